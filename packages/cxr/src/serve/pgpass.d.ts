// The part of pgpass (MIT, the pass-file reader pg itself uses; no bundled types) that audit_pg_password.ts calls.
declare module 'pgpass' {
  interface PgPassConnInfo {
    host?: string;
    port?: number | string;
    database?: string;
    user?: string;
  }
  /** The password of the pass file's first line matching `conn`, or undefined (no file, no line, or ignored). */
  function pgpass(conn: PgPassConnInfo, cb: (password: string | undefined) => void): void;
  namespace pgpass {
    /** Where the warnings go (an unsafe mode, a read error); returns the stream they went to before. */
    function warnTo(stream: NodeJS.WritableStream): NodeJS.WritableStream;
  }
  export = pgpass;
}
