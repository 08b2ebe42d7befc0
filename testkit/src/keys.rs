//! Private keys made for one test run (`openssl genpkey`, PKCS#8 PEM, in a folder that goes
//! away with the key), and their public JWK as Node's crypto computes it: an implementation
//! other than portcullis', so that a test comparing the two can fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::paths::require_program;
use crate::process::run_with_timeout;
use crate::workdir::Workdir;

/// RSA 2048 keygen is the slow one, well under this.
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048, for RS256.
    Rsa,
    /// EC on P-256, for ES256.
    EcP256,
}

impl KeyKind {
    /// The JOSE algorithm such a key signs with.
    pub fn alg(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RS256",
            KeyKind::EcP256 => "ES256",
        }
    }
}

/// A fresh private key in a PEM file of its own, with its public JWK (no `kid`, `alg` or
/// `use`: only what the key itself says).
pub struct TestKey {
    pub kind: KeyKind,
    path: PathBuf,
    public_jwk: serde_json::Value,
    _dir: Workdir,
}

impl TestKey {
    pub fn generate(kind: KeyKind) -> TestKey {
        let dir = Workdir::temp("key");
        let path = dir.path().join("client-key.pem");
        let openssl = require_program("openssl", "apt-get install openssl");
        let mut command = Command::new(openssl);
        command.arg("genpkey");
        match kind {
            KeyKind::Rsa => command.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
            KeyKind::EcP256 => {
                command.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
            }
        };
        command.arg("-out").arg(&path);
        let output = run_with_timeout(command, KEYGEN_TIMEOUT);
        assert!(
            output.status.success(),
            "openssl genpkey ({kind:?}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let public_jwk = node_public_jwk(&path);
        TestKey {
            kind,
            path,
            public_jwk,
            _dir: dir,
        }
    }

    /// The PEM file (`OIDC_PRIVATE_KEY_FILE`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_string(&self) -> String {
        self.path.display().to_string()
    }

    /// The public key as Node computes it: `kty` and `n`/`e` or `crv`/`x`/`y`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// A self-signed X.509 certificate of this key (`openssl req -x509`), written beside it,
    /// with its SHA-1 and SHA-256 thumbprints as openssl computes them, base64url (what `x5t`
    /// and `x5t#S256` must be).
    pub fn certificate(&self) -> Certificate {
        let path = self.path.with_file_name("client-cert.pem");
        let openssl = require_program("openssl", "apt-get install openssl");
        let mut command = Command::new(&openssl);
        command
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=portcullis test client",
            ])
            .arg("-key")
            .arg(&self.path)
            .arg("-out")
            .arg(&path);
        let output = run_with_timeout(command, KEYGEN_TIMEOUT);
        assert!(
            output.status.success(),
            "openssl req -x509 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let fingerprint = |digest: &str| {
            let mut command = Command::new(&openssl);
            command
                .args(["x509", "-noout", "-fingerprint", digest, "-in"])
                .arg(&path);
            let output = run_with_timeout(command, KEYGEN_TIMEOUT);
            let text = String::from_utf8_lossy(&output.stdout);
            // `sha256 Fingerprint=8D:24:...`
            let hex: String = text
                .trim()
                .rsplit('=')
                .next()
                .unwrap_or_default()
                .split(':')
                .collect();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fingerprint"))
                .collect();
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        Certificate {
            sha1: fingerprint("-sha1"),
            sha256: fingerprint("-sha256"),
            path,
        }
    }

    /// [`TestKey::public_jwk`] with `kid` (when given), `alg` and `use: sig`, as an IdP
    /// registers it.
    pub fn registered_jwk(&self, kid: Option<&str>) -> serde_json::Value {
        let mut jwk = self.public_jwk.clone();
        if let Some(kid) = kid {
            jwk["kid"] = serde_json::json!(kid);
        }
        jwk["alg"] = serde_json::json!(self.kind.alg());
        jwk["use"] = serde_json::json!("sig");
        jwk
    }
}

/// A certificate of a [`TestKey`] and its thumbprints (base64url).
pub struct Certificate {
    pub path: PathBuf,
    pub sha1: String,
    pub sha256: String,
}

/// `createPublicKey(pem).export({format: 'jwk'})`: Node's own JWK of the key's public half.
fn node_public_jwk(path: &Path) -> serde_json::Value {
    let node = require_program("node", "apt-get install nodejs npm (Node.js 18 or newer)");
    let mut command = Command::new(node);
    command
        .arg("-e")
        .arg(
            "const { createPublicKey } = require('node:crypto');\
             const { readFileSync } = require('node:fs');\
             const jwk = createPublicKey(readFileSync(process.argv[1])).export({ format: 'jwk' });\
             process.stdout.write(JSON.stringify(jwk));",
        )
        .arg(path);
    let output = run_with_timeout(command, KEYGEN_TIMEOUT);
    assert!(
        output.status.success(),
        "node could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let jwk: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("node's JWK is not JSON ({e})"));
    assert!(jwk.get("d").is_none(), "node exported a private member");
    jwk
}
