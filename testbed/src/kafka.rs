pub struct KafkaCluster; #[derive(Debug, thiserror::Error)] #[error("x")] pub struct KafkaError;
