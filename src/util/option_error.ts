// A library error about an option of a call, named as the library names it (patch, stride, type); a command
// line rewrites each name into its flag (--patch …) with the CLI's withFlags (src/cli/args.ts).

/** How a message names an option: the library writes the option's own name, a CLI its flag. */
export type OptionNamer = (option: string) => string;

/** An error about `option`; its message is `text` with every option named by the library's own names. */
export class OptionError extends Error {
  constructor(readonly option: string, private readonly text: (name: OptionNamer) => string) {
    super(text((o) => o));
  }

  /** The message with every option named by `name` (a CLI passes its flags). */
  messageWith(name: OptionNamer): string {
    return this.text(name);
  }
}
