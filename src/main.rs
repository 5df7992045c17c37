// glibc's allocator showed up as the largest user-space cost of a request
// (malloc, free and their consolidation); mimalloc is faster under many threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    agentry::cli::run()
}
