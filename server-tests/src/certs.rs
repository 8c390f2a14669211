//! Certificates generated for one test run with the `openssl` command: a CA, a server
//! certificate for `localhost` and `127.0.0.1` signed by it, a client certificate for
//! a given user signed by it, and an unrelated CA that signed nothing the server shows.
//! ECDSA P-256 keys, valid for two days.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of one run's certificates, in one directory.
#[derive(Debug, Clone)]
pub struct Certs {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A CA that signed neither.
    pub other_ca: PathBuf,
    /// The server's certificate (names `localhost` and `127.0.0.1` only).
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client certificate (common name: the user it authenticates).
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

impl Certs {
    /// Generates every file in `dir`; the client certificate names `client_user`.
    ///
    /// # Panics
    /// When `openssl` is missing or fails.
    pub fn generate(dir: &Path, client_user: &str) -> Self {
        let path = |name: &str| dir.join(name);
        let certs = Self {
            ca: path("ca.crt"),
            other_ca: path("other-ca.crt"),
            server_cert: path("server.crt"),
            server_key: path("server.key"),
            client_cert: path("client.crt"),
            client_key: path("client.key"),
        };
        self_signed_ca(dir, "ca", "pooledstore test CA");
        self_signed_ca(dir, "other-ca", "pooledstore unrelated CA");
        signed(
            dir,
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
        );
        signed(
            dir,
            "client",
            client_user,
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
        );
        certs
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn new_key(dir: &Path, name: &str) {
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&key, "").expect("create the key file");
    // Owner-only before it holds anything: PostgreSQL refuses a readable server key.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .expect("restrict the key file");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
}

fn self_signed_ca(dir: &Path, name: &str, common_name: &str) {
    new_key(dir, name);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={common_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn signed(dir: &Path, name: &str, common_name: &str, extensions: &str) {
    new_key(dir, name);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={common_name}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}
