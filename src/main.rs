fn main() {
    std::process::exit(wfc::cli::main());
}
