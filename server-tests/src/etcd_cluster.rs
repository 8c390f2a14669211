//! A private etcd cluster a test starts itself: three members on spare loopback ports,
//! data in a temporary directory, killed and removed when dropped (pass or fail). Tests
//! that kill members, or need TLS or authentication, use one of these, never the shared
//! cluster.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

/// How to reach a member's client port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP/2.
    Http,
    /// TLS with the certificates of [`ClusterTls`].
    Https,
}

/// Server certificates for TLS clusters (PEM files).
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// The members' certificate (valid for 127.0.0.1).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// Whether members demand a client certificate signed by the CA.
    pub client_cert_auth: bool,
}

/// One member: its name, ports and process.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    process: Option<Child>,
}

/// A 3-member cluster on loopback ports; stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    tls: Option<ClusterTls>,
}

/// A loopback port nothing listens on right now.
fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a spare loopback port")
}

impl PrivateCluster {
    /// Starts three members and waits until every one answers.
    ///
    /// # Panics
    /// When `etcd` is not installed or the cluster does not come up, saying why.
    pub async fn start(tls: Option<ClusterTls>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let members = (1..=3)
            .map(|n| Member {
                name: format!("p{n}"),
                client_port: spare_port(),
                peer_port: spare_port(),
                process: None,
            })
            .collect();
        let mut cluster = Self { dir, members, tls };
        for index in 0..cluster.members.len() {
            cluster.spawn(index);
        }
        for index in 0..cluster.members.len() {
            cluster.wait_answering(index, Duration::from_secs(30)).await;
        }
        cluster
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn spawn(&mut self, index: usize) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect();
        let scheme = self.scheme();
        let member = &self.members[index];
        let client_url = format!("{scheme}://127.0.0.1:{}", member.client_port);
        let peer_url = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", member.name)))
            .expect("a member log file");
        let mut command = Command::new("etcd");
        command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("{}.etcd", member.name)))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", "pooledstore-private"])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca);
            if tls.client_cert_auth {
                command.arg("--client-cert-auth");
            }
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start etcd ({e}); install it (Debian: apt-get install etcd-server)")
        });
        self.members[index].process = Some(child);
    }

    /// `etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// The `host:port` of member `index`.
    pub fn endpoint(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.members[index].client_port)
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A plain client of member `index` alone (as `root` when `root_password` is set).
    pub async fn client(&self, index: usize, root_password: Option<&str>) -> Option<Client> {
        let endpoint = format!("{}://{}", self.scheme(), self.endpoint(index));
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(Duration::from_secs(2));
        if let Some(tls) = &self.tls {
            let ca = std::fs::read(&tls.ca).expect("the CA file");
            let mut config = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(ca));
            if tls.client_cert_auth {
                let dir = tls.ca.parent().expect("the certificate directory");
                config = config.identity(etcd_client::Identity::from_pem(
                    std::fs::read(dir.join("client.crt")).expect("client.crt"),
                    std::fs::read(dir.join("client.key")).expect("client.key"),
                ));
            }
            options = options.with_tls(config);
        }
        if let Some(password) = root_password {
            options = options.with_user("root", password);
        }
        Client::connect([endpoint], Some(options)).await.ok()
    }

    /// Waits until member `index` answers a status request.
    ///
    /// # Panics
    /// After `limit`, pointing at the member's log.
    pub async fn wait_answering(&self, index: usize, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(mut client) = self.client(index, None).await
                && client.status().await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "etcd member {} did not answer within {limit:?}; see {}",
            self.members[index].name,
            self.dir
                .path()
                .join(format!("{}.log", self.members[index].name))
                .display()
        );
    }

    /// The index of the current leader, asking every running member.
    pub async fn leader(&self) -> Option<usize> {
        for index in 0..self.members.len() {
            if self.members[index].process.is_none() {
                continue;
            }
            let Some(mut client) = self.client(index, None).await else {
                continue;
            };
            let Ok(status) = client.status().await else {
                continue;
            };
            let (leader, me) = (
                status.leader(),
                status.header().map_or(0, |h| h.member_id()),
            );
            if leader != 0 && leader == me {
                return Some(index);
            }
        }
        None
    }

    /// Kills member `index` with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `index` again on its data and waits until it answers.
    pub async fn restart(&mut self, index: usize) {
        self.spawn(index);
        self.wait_answering(index, Duration::from_secs(30)).await;
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}
