//! Throwaway certificates for TLS tests, made by the `openssl` CLI at test
//! time: a CA and server certificates it signs for an IP address. Shared
//! by `fs/tests/mutants_tls.rs` and the root package's
//! `tests/https_endpoint.rs` (included there by `#[path]`). Fails loudly,
//! never skips, when `openssl` is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `openssl ARGS` (split on whitespace) in `dir`, failing loudly if
/// the CLI is missing.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let output = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!("this test needs the `openssl` CLI on PATH to make its certificates: {error}")
        });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A self-signed CA `NAME.pem` / `NAME.key` in `dir` (EC P-256, one day).
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {name}.key -out {name}.pem -days 1 -subj /CN=rotor-test-{name} \
             -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    );
    dir.join(format!("{name}.pem"))
}

/// A server certificate `NAME.pem` / `NAME.key` for the IP address `ip`
/// (IP SAN and CN) signed by CA `ca`; returns (cert, key).
pub fn make_server_cert(dir: &Path, ca: &str, name: &str, ip: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName=IP:{ip}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &format!(
            "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {name}.key -out {name}.csr -subj /CN={ip}"
        ),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
             -out {name}.pem -days 1 -extfile {name}.ext"
        ),
    );
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// A CA (`ca`), the server certificate it signed for 127.0.0.1, and a CA
/// that signed nothing (`other_ca`), in a fresh temp dir.
pub struct Pki {
    /// Holds the files; `tests/https_endpoint.rs` also makes more in it.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "ca");
    let other_ca = make_ca(dir.path(), "other-ca");
    let (cert, key) = make_server_cert(dir.path(), "ca", "server", "127.0.0.1");
    Pki {
        dir,
        ca,
        other_ca,
        cert,
        key,
    }
}
