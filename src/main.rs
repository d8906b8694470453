//! The `sipplauncher` command: everything is in [`sipplauncher::app`].

fn main() {
    std::process::exit(sipplauncher::app::main());
}
