import { StateStoreError } from '@vltava/dsl';

/**
 * Thrown by a ChangelogReader when asked to read below the beginning of the log (the records were
 * deleted by retention or DeleteRecords). `restore` handles it: the store is wiped and fully restored.
 */
export class ChangelogTruncatedError extends StateStoreError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly requestedOffset: number,
    readonly beginningOffset: number,
  ) {
    super(
      `changelog ${topic}-${partition} starts at offset ${beginningOffset}, but offset ${requestedOffset} was requested: ` +
        `the records in between were deleted. The store must be restored from the beginning of the changelog.`,
      { retriable: true },
    );
  }
}
