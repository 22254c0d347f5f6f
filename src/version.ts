/** This release's version, reported by `--version` and `srvr`. */
export const VERSION = "0.1.0";
