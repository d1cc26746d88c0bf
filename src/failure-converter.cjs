// The failure converter of the engine's clients and workers (see src/codec.ts, FAILURE_CONVERTER_PATH):
// failure messages and stack traces are encoded as a payload, which the encryption codec encrypts.
// CommonJS because the SDK require()s it by path. Not bundled into the workflows: see src/codec.ts.
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
