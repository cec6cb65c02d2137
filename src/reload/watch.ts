/**
 * Watches the directories of the files a reload reads. A directory, not the file: Kubernetes updates a
 * mounted ConfigMap or Secret by writing a new timestamped directory and renaming a `..data_tmp` symlink
 * over `..data` (the file names are symlinks through `..data`), so the file itself never changes and a
 * watch on it — on the inode it first resolved to — sees nothing. Every event in the directory counts;
 * whether anything changed is decided by reading the files (reloader.ts), not by event names.
 */
import { watch, type FSWatcher } from 'node:fs';

export interface DirectoryWatch {
  /** The directories watched (those that could not be are reported through onError and left out). */
  readonly directories: readonly string[];
  close(): void;
}

export function watchDirectories(
  directories: readonly string[],
  onEvent: (directory: string, filename: string | null) => void,
  onError: (directory: string, error: Error) => void,
): DirectoryWatch {
  const watchers: FSWatcher[] = [];
  const watched: string[] = [];
  for (const directory of new Set(directories)) {
    try {
      // persistent: false — the servers keep the process alive; a watcher alone must not.
      const watcher = watch(directory, { persistent: false }, (_event, filename) => onEvent(directory, filename === null ? null : String(filename)));
      watcher.on('error', (error: Error) => onError(directory, error));
      watchers.push(watcher);
      watched.push(directory);
    } catch (error) {
      onError(directory, error as Error);
    }
  }
  return {
    directories: watched,
    close: () => {
      for (const watcher of watchers) watcher.close();
      watchers.length = 0;
    },
  };
}
