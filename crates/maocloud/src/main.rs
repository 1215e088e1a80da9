//! Entry point of the single `maocloud` binary: platform server, hypervisor-side commands to
//! come, operator tools and the CLI client. See `maocloud --help`.

fn main() -> std::process::ExitCode {
    maocloud::cli::main()
}
