fn main() -> anyhow::Result<()> {
    agentry::cli::run()
}
