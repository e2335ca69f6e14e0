// The child process of curate.test.ts's kill -9 test: curate() with the options given as JSON in argv[2].
import { curate } from "../../src/curate/index.ts";

await curate(JSON.parse(process.argv[2]!));
