//! The plugin executable Mattermost starts.

fn main() {
    eprintln!(
        "{} {}: this binary is a Mattermost plugin; it is started by the Mattermost server.",
        env!("PLUGIN_ID"),
        env!("PLUGIN_VERSION")
    );
    std::process::exit(1);
}
