//! The operations' own settings, read from the environment next to the runtime's.

use clap::Parser;

/// Where the operations' money and XP live in the ledger.
#[derive(Debug, Clone, Parser)]
#[command(no_binary_name = true)]
pub struct OperationsSettings {
    /// Asset of the besitos rewards grant and plans are usually priced in.
    #[arg(
        long,
        env = "PHOENIX_COORDINATOR_CURRENCY_ASSET",
        default_value = "BESITOS"
    )]
    pub currency_asset: String,
    /// Asset of experience points.
    #[arg(long, env = "PHOENIX_COORDINATOR_XP_ASSET", default_value = "XP")]
    pub xp_asset: String,
    /// Owner of the issuer accounts rewards are paid from (one per asset, kind `issuer`, no
    /// balance limit), opened on first use.
    #[arg(
        long,
        env = "PHOENIX_COORDINATOR_ISSUER_OWNER",
        default_value = "coordinator"
    )]
    pub issuer_owner: String,
}

impl OperationsSettings {
    /// The settings from `args` (`--name=value`), then the environment, then the defaults.
    /// Arguments meant for other parts of the coordinator are ignored here.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        Ok(Self::try_parse_from(args.iter().filter(|arg| {
            ["--currency-asset", "--xp-asset", "--issuer-owner"]
                .iter()
                .any(|known| arg.starts_with(known))
        }))?)
    }
}
