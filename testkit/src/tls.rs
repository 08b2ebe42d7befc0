//! A private CA made for one test run (`openssl`, EC P-256, valid two days), with a server
//! certificate for 127.0.0.1 and a client certificate: what a Redis with TLS and
//! `tls-auth-clients yes` needs, and what portcullis is given to trust and present.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::paths::require_program;
use crate::process::run_with_timeout;
use crate::workdir::Workdir;

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// The files of a test PKI, in a folder that goes away with it.
pub struct TestPki {
    dir: Workdir,
}

impl TestPki {
    /// A CA, and a server and a client certificate it signed.
    pub fn generate() -> TestPki {
        let pki = TestPki {
            dir: Workdir::temp("pki"),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=portcullis test CA",
        ]);
        pki.leaf(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.leaf("client", "/CN=portcullis", "extendedKeyUsage=clientAuth\n");
        pki
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.path("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name.pem` and `name.key`, signed by the CA, with the X.509 v3 `extensions` (webpki
    /// accepts no v1 certificate).
    fn leaf(&self, name: &str, subject: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.path(&ext), extensions).expect("write extensions");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let openssl = require_program("openssl", "apt-get install openssl");
        let mut command = Command::new(openssl);
        command.args(args).current_dir(self.dir.path());
        let output = run_with_timeout(command, OPENSSL_TIMEOUT);
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
