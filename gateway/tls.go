package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles names the files of the servers' TLS configuration.
type TLSFiles struct {
	// CertFile and KeyFile hold the server's certificate chain and key (PEM).
	CertFile, KeyFile string
	// ClientCA, when set, turns on mutual TLS: clients must present a
	// certificate signed by one of its CAs (PEM).
	ClientCA string
	// MinVersion is "1.3" (default) or "1.2".
	MinVersion string
}

// LoadTLS builds the servers' tls.Config from files.
func LoadTLS(f TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS certificate %s / key %s: %w", ErrConfig, f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	switch f.MinVersion {
	case "", "1.3":
	case "1.2":
		cfg.MinVersion = tls.VersionTLS12
	default:
		return nil, fmt.Errorf("%w: TLS min version %q; use 1.3 or 1.2", ErrConfig, f.MinVersion)
	}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("%w: client CA: %w", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: client CA %s holds no PEM certificate", ErrConfig, f.ClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// PinOf returns the SHA-256 of a certificate's SubjectPublicKeyInfo in hex:
// what a client pins (client.Config.PinSHA256).
func PinOf(der []byte) (string, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// EnsureSelfSigned makes a self-signed ECDSA P-256 certificate for hosts in
// dir (cert.pem, key.pem, mode 0600 for the key) unless both exist, and
// returns their paths: the local default of `tradecore serve`, for clients
// that pin it.
func EnsureSelfSigned(dir string, hosts []string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_, e1 := os.Stat(certFile)
	_, e2 := os.Stat(keyFile)
	if e1 == nil && e2 == nil {
		return certFile, keyFile, nil
	}
	if !errors.Is(e1, fs.ErrNotExist) && e1 != nil {
		return "", "", e1
	}
	certPEM, keyPEM, err := SelfSigned(hosts, 365*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// SelfSigned returns a self-signed certificate and key (PEM) for hosts
// (names or IP addresses), valid for life; it can also sign client
// certificates in tests (it is its own CA).
func SelfSigned(hosts []string, life time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "tradecore gateway"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(life),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, IsCA: true}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), nil
}
