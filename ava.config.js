// One ava run over every compiled test in the workspace (`pnpm test` runs `tsc -b` first).
// Tests whose title contains "[broker]" need a real Kafka broker (see tools/kafka-local).
export default {
  files: [
    'packages/*/dist/**/*.test.js',
    'tools/*/dist/**/*.test.js',
    'examples/*/dist/**/*.test.js',
    'bench/dist/**/*.test.js',
  ],
  timeout: '120s',
  concurrency: 4,
  workerThreads: false,
};
