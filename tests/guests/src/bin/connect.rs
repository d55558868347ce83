//! `connect`: tries to use the network and prints one stdout line per attempt,
//! `<attempt>: denied` or `<attempt>: LEAKED`: TCP connects (1 s timeout) to
//! 127.0.0.1:80 and 10.0.0.1:80, a UDP bind to 0.0.0.0:0 and, from that
//! socket, a datagram to 127.0.0.1:53. Always exits 0; the host's test asserts
//! that no line contains `LEAKED`.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

fn report(attempt: &str, leaked: bool) {
    if leaked {
        println!("{attempt}: LEAKED");
    } else {
        println!("{attempt}: denied");
    }
}

fn main() {
    for ip in [[127, 0, 0, 1], [10, 0, 0, 1]] {
        let addr = SocketAddr::from((ip, 80));
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        report(&format!("connect {addr}"), tcp.is_ok());
    }

    let udp = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)));
    report("udp bind 0.0.0.0:0", udp.is_ok());
    // Without a socket nothing can be sent, which counts as denied.
    let sent = udp.ok().is_some_and(|socket| {
        socket
            .send_to(b"cairn", SocketAddr::from(([127, 0, 0, 1], 53)))
            .is_ok()
    });
    report("udp send_to 127.0.0.1:53", sent);
}
