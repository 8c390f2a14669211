//! A TCP relay between a store and its server that a test can break: it forwards, then
//! refuses new connections, or accepts them and never answers. Cut connections end at
//! once, as when a server host goes away.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the relay does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Blackhole,
}

/// A relay on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts relaying a spare loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the relay's address");
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn(accept_loop(
            listener,
            target,
            Arc::clone(&mode),
            Arc::clone(&connections),
        ));
        Self {
            addr,
            mode,
            accept: Some(accept),
            connections,
        }
    }

    /// The address stores should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every relayed connection and stops listening: new connections are refused.
    pub fn refuse(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.cut();
    }

    /// Cuts every relayed connection; new ones are accepted and never answered.
    pub fn blackhole(&self) {
        *self.mode.lock().unwrap() = Mode::Blackhole;
        self.cut();
    }

    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.refuse();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let mode = *mode.lock().unwrap();
        let relay = tokio::spawn(relay(client, target, mode));
        connections.lock().unwrap().push(relay);
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mode: Mode) {
    match mode {
        Mode::Forward => {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Mode::Blackhole => std::future::pending::<()>().await,
    }
}
