//! `kiln`: print graphs and run them on `.npy` files. See `kiln --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
