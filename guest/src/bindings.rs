//! The one `wit_bindgen::generate!` site: raw bindings to the `netlet:net` WIT package.
//! Everything public in this crate wraps these; handler authors never see them.

wit_bindgen::generate!({
    world: "tcp-udp",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "__netlet_export_world",
});
