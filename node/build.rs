//! Node-API link settings for the addon (per platform; nothing to download).
fn main() {
    napi_build::setup();
}
