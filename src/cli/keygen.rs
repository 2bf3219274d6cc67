use std::path::Path;
use std::process::ExitCode;

use crate::record::keys;

pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let (private, public, kid) = keys::generate(dir)?;
    println!(
        "private key: {} (mode 0600; keep it on this station)",
        private.display()
    );
    println!(
        "public key:  {} (give it to the case system)",
        public.display()
    );
    println!("kid:         {kid}");
    Ok(ExitCode::SUCCESS)
}
