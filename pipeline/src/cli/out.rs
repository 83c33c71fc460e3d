//! Command output on standard output that stops quietly when its reader has gone.

/// `println!` for command output. When standard output is a pipe whose reader has closed
/// (`refinery query … | head`), the process exits with status 141, as a Unix tool killed by
/// SIGPIPE does, instead of panicking with a backtrace.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}

/// Writes one formatted line to standard output (see [`outln!`]).
pub(crate) fn line(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        panic!("failed printing to stdout: {e}");
    }
}
