//! `resolve`: tries to look up host names (`localhost`, `example.com`)
//! and prints one stdout line each, `resolve <name>: denied` or
//! `resolve <name>: LEAKED <addresses>`. Always exits 0.

use std::net::ToSocketAddrs;

fn main() {
    for name in ["localhost", "example.com"] {
        match (name, 80).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<String> = addrs.map(|a| a.to_string()).collect();
                println!("resolve {name}: LEAKED {addrs:?}");
            }
            Err(_) => println!("resolve {name}: denied"),
        }
    }
}
