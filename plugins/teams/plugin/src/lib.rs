//! The `teams` connector as a plugin library (`libcavra_plugin_teams.so`): it
//! only exports `cavra-connector-teams`, which cavra also links as a built-in.
//! The library stays to prove the plugin path vendors use: the same
//! connector, loaded from a file, in process or in a child.

cavra_connector_api::export_connector!(cavra_connector_teams::Teams);
