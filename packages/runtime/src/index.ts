export { isFencingError, kafkaErrorType, errorChain, toTaskError } from './kafka/kafkaErrors.js';
