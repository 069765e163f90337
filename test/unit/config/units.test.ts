import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/config/units.js';

describe('parseSize', () => {
  const good: [unknown, number][] = [
    [0, 0],
    ['0', 0],
    [1024, 1024],
    ['1024', 1024],
    ['100B', 100],
    ['100 b', 100],
    ['1KB', 1000],
    ['1kb', 1000],
    ['1KiB', 1024],
    ['512KiB', 524_288],
    ['500MB', 500_000_000],
    ['1MiB', 1_048_576],
    ['10GB', 10_000_000_000],
    ['10GiB', 10_737_418_240],
    ['1.5 GB', 1_500_000_000],
    ['1.5GiB', 1_610_612_736],
    ['1.1KB', 1100],
    ['0.5KiB', 512],
    ['  20 GB  ', 20_000_000_000],
    ['2TB', 2_000_000_000_000],
    ['1TiB', 1_099_511_627_776],
    ['1PB', 1e15],
    ['1PiB', 1_125_899_906_842_624],
  ];
  for (const [input, bytes] of good) {
    test(`${JSON.stringify(input)} is ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));
  }

  const bad: [unknown, RegExp][] = [
    [-1, /non-negative/],
    ['-5GB', /negative/],
    [1.5, /whole/],
    ['1.5B', /whole number of bytes/],
    ['0.0001KB', /whole number of bytes/],
    ['1.0000000001KiB', /whole number of bytes/],
    ['10G', /"GB".*"GiB"/],
    ['10 K', /"KB".*"KiB"/],
    ['10 bytes', /unknown unit "bytes"/],
    ['ten GB', /must be a size/],
    ['', /must be a size/],
    ['1e9', /must be a size/],
    ['1,000', /must be a size/],
    ['10GB extra', /must be a size/],
    [true, /got boolean true/],
    [null, /must be a size/],
    [[1], /got a list/],
    [{ a: 1 }, /got a mapping/],
    [Number.POSITIVE_INFINITY, /non-negative/],
    [Number.NaN, /non-negative/],
    [2 ** 60, /too large/],
    ['9PiB', /too large/],
  ];
  for (const [input, message] of bad) {
    test(`${JSON.stringify(input) ?? String(input)} is rejected`, () => assert.throws(() => parseSize(input), message));
  }
});

describe('parseDuration', () => {
  const good: [unknown, number][] = [
    [0, 0],
    ['0', 0],
    ['0s', 0],
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1h 30m 15s', 5_415_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    [' 10m ', 600_000],
  ];
  for (const [input, ms] of good) {
    test(`${JSON.stringify(input)} is ${ms} ms`, () => assert.equal(parseDuration(input), ms));
  }

  const bad: [unknown, RegExp][] = [
    [60, /needs a unit.*"60s"/],
    ['60', /needs a unit/],
    ['-5s', /negative/],
    ['5 seconds', /unknown unit "seconds"/],
    ['5us', /unknown unit "us"/],
    ['1H', /must be a duration/],
    ['30m1h', /largest first/],
    ['1m1m', /largest first/],
    ['0.5ms', /whole number of milliseconds/],
    ['1h30', /must be a duration/],
    ['soon', /must be a duration/],
    ['', /must be a duration/],
    [true, /must be a duration/],
    [null, /must be a duration/],
    ['99999999999d', /too large/],
  ];
  for (const [input, message] of bad) {
    test(`${JSON.stringify(input)} is rejected`, () => assert.throws(() => parseDuration(input), message));
  }
});

describe('formatting', () => {
  test('formatSize prefers exact units and round-trips through parseSize', () => {
    const cases: [number, string][] = [
      [0, '0 B'],
      [100, '100 B'],
      [1000, '1 KB'],
      [1024, '1 KiB'],
      [10_000_000_000, '10 GB'],
      [10_737_418_240, '10 GiB'],
      [1536, '1.50 KiB'],
    ];
    for (const [bytes, text] of cases) {
      assert.equal(formatSize(bytes), text);
      if (!text.includes('.')) assert.equal(parseSize(text), bytes);
    }
  });

  test('formatDuration round-trips through parseDuration', () => {
    for (const ms of [0, 1, 250, 1000, 60_000, 5_400_000, 93_784_005, 604_800_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
    assert.equal(formatDuration(5_400_000), '1h30m');
  });
});
