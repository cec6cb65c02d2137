/** The problems a config (or config file) is refused with, for tests of the schema's messages. */
import { ConfigError } from '../../src/config/load.js';

export function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}
