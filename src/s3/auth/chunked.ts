/**
 * Incremental aws-chunked decoder: `hex-size[;chunk-signature=sig]\r\n<data>\r\n` ... final zero-size
 * chunk, then optional trailers (`name:value\r\n` ..., `x-amz-trailer-signature:sig\r\n`) and `\r\n`.
 * Input may be split anywhere; data is passed on as it arrives (O(1) memory), chunk signatures are
 * checked as each chunk completes, and every failure is an S3Error thrown from write() or end().
 */
import { createHash, type Hash } from 'node:crypto';
import { S3Error } from '../errors.js';
import { EMPTY_SHA256, constantTimeEqual, sha256Hex, signHex } from './canonical.js';
import type { SigningContext } from './types.js';

/** Longest chunk header or trailer line accepted; real ones are under 100 bytes. */
const MAX_LINE = 4096;
/** Most trailer lines accepted (S3 allows one checksum plus the signature). */
const MAX_TRAILERS = 8;
const CR = 0x0d;
const LF = 0x0a;

const enum State {
  Header,
  Data,
  DataCr,
  DataLf,
  FinalCrlf,
  Trailers,
  Done,
}

/** Options of {@link AwsChunkedDecoder}. */
export interface ChunkedOptions {
  /** Set for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: chunk signatures are verified with it. */
  signing?: SigningContext;
  /** True when the body ends with a trailer section (the -TRAILER payload modes). */
  trailer: boolean;
  /** x-amz-decoded-content-length: the exact number of decoded bytes. */
  decodedLength: number;
  /** Receives decoded bytes in order. */
  onData: (data: Buffer) => void;
}

function invalid(detail: string): S3Error {
  return new S3Error('InvalidRequest', `Invalid aws-chunked body: ${detail}`);
}

function incomplete(): S3Error {
  return new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk.');
}

function tooLong(): S3Error {
  return new S3Error('InvalidRequest', 'The aws-chunked body is longer than x-amz-decoded-content-length.');
}

/** Decodes (and for signed modes verifies) an aws-chunked body fed in arbitrary slices. */
export class AwsChunkedDecoder {
  /** Trailer headers received, lower-case names, trimmed values (signature excluded). */
  readonly trailers = new Map<string, string>();
  private state = State.Header;
  private line = Buffer.alloc(MAX_LINE);
  private lineLen = 0;
  private remaining = 0;
  private decoded = 0;
  private prevSignature: string;
  private chunkSignature = '';
  private chunkHash: Hash | undefined;
  private trailerText = '';
  private trailerSigned = false;
  private finalCrlfSeen = 0;

  constructor(private readonly opts: ChunkedOptions) {
    this.prevSignature = opts.signing?.seedSignature ?? '';
  }

  /** Feeds raw body bytes. Throws S3Error at the first framing, length or signature problem. */
  write(buf: Buffer): void {
    let i = 0;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case State.Data: {
          const take = Math.min(this.remaining, n - i);
          const piece = buf.subarray(i, i + take);
          this.chunkHash?.update(piece);
          this.opts.onData(piece);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) {
            this.state = State.DataCr;
            this.verifyChunk(this.chunkHash === undefined ? '' : this.chunkHash.digest('hex'));
          }
          break;
        }
        case State.DataCr:
          if (buf[i++] !== CR) throw invalid('chunk data is not followed by CRLF');
          this.state = State.DataLf;
          break;
        case State.DataLf:
          if (buf[i++] !== LF) throw invalid('chunk data is not followed by CRLF');
          this.state = State.Header;
          break;
        case State.FinalCrlf: {
          const want = this.finalCrlfSeen === 0 ? CR : LF;
          if (buf[i++] !== want) throw invalid('unexpected bytes after the final chunk');
          if (++this.finalCrlfSeen === 2) this.state = State.Done;
          break;
        }
        case State.Header:
        case State.Trailers: {
          const lf = buf.indexOf(LF, i);
          const end = lf < 0 ? n : lf;
          if (this.lineLen + (end - i) > MAX_LINE) throw invalid('chunk header or trailer line too long');
          buf.copy(this.line, this.lineLen, i, end);
          this.lineLen += end - i;
          i = end;
          if (lf >= 0) {
            i++;
            this.completeLine();
          }
          break;
        }
        case State.Done:
          throw invalid('unexpected bytes after the end of the body');
      }
    }
  }

  /** Call at end of input. Throws S3Error when the body stopped before its proper end. */
  end(): void {
    switch (this.state) {
      case State.Done:
        return;
      case State.FinalCrlf:
        // Some encoders stop right after the final chunk header; all signatures are already checked.
        if (this.finalCrlfSeen === 0) return;
        throw incomplete();
      case State.Trailers:
        if (this.lineLen === 0 && (this.opts.signing === undefined || this.trailerSigned)) return;
        throw incomplete();
      default:
        throw incomplete();
    }
  }

  /** Decoded bytes so far. */
  get decodedBytes(): number {
    return this.decoded;
  }

  private takeLine(): string {
    if (this.lineLen === 0 || this.line[this.lineLen - 1] !== CR) throw invalid('line not terminated by CRLF');
    const text = this.line.toString('latin1', 0, this.lineLen - 1);
    this.lineLen = 0;
    return text;
  }

  private completeLine(): void {
    const text = this.takeLine();
    if (this.state === State.Header) this.chunkHeader(text);
    else this.trailerLine(text);
  }

  private chunkHeader(text: string): void {
    const semi = text.indexOf(';');
    const sizeText = semi < 0 ? text : text.slice(0, semi);
    if (!/^[0-9a-fA-F]{1,13}$/.test(sizeText)) throw invalid(`bad chunk size "${sizeText.slice(0, 32)}"`);
    const size = parseInt(sizeText, 16);
    if (this.opts.signing !== undefined) {
      const ext = semi < 0 ? '' : text.slice(semi + 1);
      const m = /^chunk-signature=([0-9a-f]{64})$/.exec(ext);
      if (m === null) throw invalid('chunk header lacks a valid chunk-signature');
      this.chunkSignature = m[1]!;
    }
    if (size > this.opts.decodedLength - this.decoded) throw tooLong();
    if (size > 0) {
      this.decoded += size;
      this.remaining = size;
      this.chunkHash = this.opts.signing === undefined ? undefined : createHash('sha256');
      this.state = State.Data;
      return;
    }
    this.verifyChunk(EMPTY_SHA256);
    if (this.decoded !== this.opts.decodedLength) {
      throw new S3Error(
        'IncompleteBody',
        'You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header.',
      );
    }
    this.state = this.opts.trailer ? State.Trailers : State.FinalCrlf;
  }

  /** Checks the signature of the chunk just completed; chunkHashHex is its SHA-256 (unused if unsigned). */
  private verifyChunk(chunkHashHex: string): void {
    const s = this.opts.signing;
    if (s === undefined) return;
    const toSign = `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${this.prevSignature}\n${EMPTY_SHA256}\n${chunkHashHex}`;
    const expected = signHex(s.signingKey, toSign);
    if (!constantTimeEqual(expected, this.chunkSignature)) {
      throw new S3Error('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the one provided.', {
        StringToSign: toSign,
        SignatureProvided: this.chunkSignature,
      });
    }
    this.prevSignature = expected;
  }

  private trailerLine(text: string): void {
    if (text === '') {
      if (this.opts.signing !== undefined && !this.trailerSigned) throw invalid('missing x-amz-trailer-signature');
      this.state = State.Done;
      return;
    }
    if (this.trailerSigned) throw invalid('trailer after x-amz-trailer-signature');
    const colon = text.indexOf(':');
    if (colon <= 0) throw invalid('malformed trailer line');
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') {
      this.verifyTrailer(value);
      return;
    }
    if (this.trailers.has(name)) throw invalid(`repeated trailer ${name}`);
    if (this.trailers.size >= MAX_TRAILERS) throw invalid('too many trailers');
    this.trailers.set(name, value);
    this.trailerText += `${name}:${value}\n`;
  }

  private verifyTrailer(signature: string): void {
    const s = this.opts.signing;
    if (s === undefined) throw invalid('x-amz-trailer-signature in an unsigned body');
    const toSign = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${this.prevSignature}\n${sha256Hex(this.trailerText)}`;
    const expected = signHex(s.signingKey, toSign);
    if (!constantTimeEqual(expected, signature)) {
      throw new S3Error('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the one provided.', {
        StringToSign: toSign,
        SignatureProvided: signature,
      });
    }
    this.trailerSigned = true;
  }
}
