import { finished, type Readable } from 'node:stream';

/**
 * Resolves once `body` has ended cleanly; rejects with its error. A backend may acknowledge a write as soon
 * as it holds the declared number of bytes, before the body's own end, which is where the S3 layer finishes
 * verifying it (the aws-chunked final chunk and trailer, digests): only after this are its digests valid.
 * Whatever is still unread is drained (the backend already took the declared length, so excess bytes are
 * the client's error, which the verifier reports through the stream).
 */
export function bodyEnded(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const drain = (): void => {
      while (body.read() !== null) {
        // Discarded: see above.
      }
    };
    finished(body, { writable: false }, (err) => {
      body.off('readable', drain);
      if (err) reject(err);
      else resolve();
    });
    body.on('readable', drain);
    drain();
  });
}
