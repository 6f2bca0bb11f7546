export { isFencingError, kafkaErrorType, errorChain, toTaskError } from './kafka/kafkaErrors.js';
export { sendOffsetsWithRetry, isRetriableCoordinatorError, type RetryOptions } from './kafka/sendOffsets.js';
