import type { Orchestrator } from '../app.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';

/**
 * SIGHUP: re-reads the configuration file and applies its declared entries (backends, buckets,
 * credentials) to the running instance. An invalid file is logged and ignored: the running state stays.
 * Reloads never overlap; a SIGHUP arriving during one makes it run once more afterwards. Returns the
 * function that removes the handler.
 */
export function reloadOnSighup(
  orch: Orchestrator,
  file: string | undefined,
  log: Logger,
  adjust: (config: Config) => Config = (c) => c,
): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  const reloadOnce = async (): Promise<void> => {
    if (!file) {
      log.warn('SIGHUP: zero-config mode has no configuration file to reload');
      return;
    }
    let next: Config;
    try {
      next = adjust(await loadConfigFile(file));
    } catch (err) {
      log.error('SIGHUP: the configuration file is not valid; nothing was changed', {
        file,
        problems: err instanceof ConfigError ? err.message : String(err),
      });
      return;
    }
    try {
      await orch.reload(next);
      log.info('SIGHUP: configuration reloaded', { file });
    } catch (err) {
      log.error('SIGHUP: applying the configuration failed; the running state stays (send SIGHUP again to retry)', { file, err });
    }
  };
  const onHup = () => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again);
      running = undefined;
    })();
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}
