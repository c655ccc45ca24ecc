//! `redis_node_manager`: keeps a Redis master/replica group available, coordinated through
//! ZooKeeper.
pub mod config;
pub mod decide;
pub mod health;
pub mod info;
