/**
 * Prerequisites of the unit tests that drive a browser (the CLI) or python (numpy interop), and
 * the rule for when one is missing: on a developer's machine the tests that need it are skipped;
 * with the environment variable CI set (`.ci/run` installs both) they fail, saying what is missing,
 * so that a CI run can never pass by skipping them.
 *
 * Chromium is looked up exactly as the CLI finds it (cli/browser.ts chromePath: CHROME_PATH, then
 * the usual names), so a browser installed under another name runs these tests instead of skipping.
 */
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';
import { chromePath } from '../../cli/browser';

interface Prereq {
  what: string;
  ok: boolean;
  install: string;
}

function chromeFound(): boolean {
  try {
    chromePath();
    return true;
  } catch {
    return false;
  }
}

function numpyFound(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const CHROME: Prereq = {
  what: 'Chromium',
  ok: chromeFound(),
  install: 'apt-get install -y chromium, or set CHROME_PATH',
};

export const NUMPY: Prereq = {
  what: 'python3 with numpy',
  ok: numpyFound(),
  install: 'apt-get install -y python3-numpy',
};

const ci = (): boolean => Boolean(process.env.CI);

function refusal(p: Prereq): Error {
  return new Error(`${p.what} is missing and CI is set, so this test may not be skipped (${p.install})`);
}

type TestFn = (name: string, fn: () => unknown, timeout?: number) => void;
type SuiteFn = (name: string, fn: () => void) => void;

/** `it` when `p` is present; otherwise `it.skip`, or under CI a test that fails saying why. */
export function itNeeds(p: Prereq): TestFn {
  if (p.ok) return it;
  if (ci())
    return (name, _fn, timeout) =>
      it(
        name,
        () => {
          throw refusal(p);
        },
        timeout,
      );
  return it.skip;
}

/** `describe` when `p` is present; otherwise `describe.skip`, or under CI one failing test. */
export function describeNeeds(p: Prereq): SuiteFn {
  if (p.ok) return describe;
  if (ci())
    return (name) =>
      describe(name, () => {
        it(`needs ${p.what}`, () => {
          throw refusal(p);
        });
      });
  return describe.skip;
}
