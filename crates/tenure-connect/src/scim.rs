//! Placeholder: the SCIM connector is being written.
use crate::{Result, ConnectorError};
use tenure_core::config::ScimSettings;
pub struct ScimConnector;
impl ScimConnector {
    pub fn new(_name: &str, _s: &ScimSettings, _concurrency: usize) -> Result<Self> {
        Err(ConnectorError::permanent("the SCIM connector is not built yet"))
    }
}
#[async_trait::async_trait]
impl crate::Connector for ScimConnector {
    fn name(&self) -> &str { "" }
    fn capabilities(&self) -> &'static [crate::Capability] { &[] }
    async fn apply(&self, _r: &crate::Request) -> Result<crate::Applied> { Err(ConnectorError::permanent("not built")) }
    async fn read_account(&self, _a: &crate::AccountSpec) -> Result<Option<crate::AccountState>> { Err(ConnectorError::permanent("not built")) }
    async fn list_accounts(&self) -> Result<Vec<crate::AccountState>> { Err(ConnectorError::permanent("not built")) }
    async fn list_entitlements(&self) -> Result<Vec<String>> { Err(ConnectorError::permanent("not built")) }
}
