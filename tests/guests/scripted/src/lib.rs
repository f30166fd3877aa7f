//! placeholder
struct S;
impl netlet_guest::NetHandler for S {}
netlet_guest::export_net!(S);
