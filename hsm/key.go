package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// PKCS#11 v3.0 constants for Edwards curves, missing from miekg/pkcs11 v1.1.2.
const (
	ckkECEdwards            = 0x00000040 // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen  = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA                = 0x00001057 // CKM_EDDSA
	fingerprintBytes        = manifest.IDBytes
	pendingIDPrefix         = "pending:"
	maxObjectsPerFindObject = 64
)

var (
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}                               // 1.3.101.112
	oidP256    = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
)

// Algorithm is a signing algorithm; see manifest.Algorithm for the names.
type Algorithm = manifest.Algorithm

// The signing algorithms. Ed25519 (CKM_EDDSA, through miekg/pkcs11) is the
// default; ECDSA P-256 (CKM_ECDSA, through crypto11) the alternative.
const (
	Ed25519   = manifest.Ed25519
	ECDSAP256 = manifest.ECDSAP256
)

// Key is a private key that lives in the token and never leaves it, handed
// out as a crypto.Signer. Sign follows the standard library's conventions:
//
//   - Ed25519: Sign(rand, message, crypto.Hash(0)) signs the whole message
//     (pure Ed25519, RFC 8032); the signature is 64 bytes R‖S.
//   - ECDSA P-256: Sign(rand, digest, crypto.SHA256) signs a digest; the
//     signature is ASN.1 DER (as crypto/ecdsa.SignASN1 and openssl produce).
//
// rand is ignored: the token draws its own randomness.
type Key struct {
	t     *Token
	id    string
	label string
	alg   Algorithm
	pub   crypto.PublicKey
	priv  pkcs11.ObjectHandle
	c11   crypto11.Signer // ECDSA only
}

var _ crypto.Signer = (*Key)(nil)

// ID returns the key id: hex of the first 16 bytes of SHA-256 over the
// public key's PKIX (SubjectPublicKeyInfo) DER encoding. The same 16 bytes
// are the key's CKA_ID in the token.
func (k *Key) ID() string { return k.id }

// Label returns the key's CKA_LABEL.
func (k *Key) Label() string { return k.label }

// Algorithm returns the key's algorithm.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Public returns the public key (ed25519.PublicKey or *ecdsa.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign implements crypto.Signer; see [Key] for the encodings.
func (k *Key) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), msg, opts)
}

// SignContext is Sign with a context that bounds the wait for a session.
func (k *Key) SignContext(ctx context.Context, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	switch k.alg {
	case Ed25519:
		if opts != nil && opts.HashFunc() != 0 {
			return nil, fmt.Errorf("%w: Ed25519ph (pre-hashed Ed25519); pass crypto.Hash(0) and the whole message", ErrUnsupported)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, fmt.Errorf("%w: Ed25519ctx (a context string)", ErrUnsupported)
		}
		var sig []byte
		err := k.t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
			if err := k.t.p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, k.priv); err != nil {
				return p11err("C_SignInit", err)
			}
			var err error
			sig, err = k.t.p.Sign(sh, msg)
			return p11err("C_Sign", err)
		})
		return sig, err
	case ECDSAP256:
		if opts != nil && opts.HashFunc() != 0 && opts.HashFunc().Size() != len(msg) {
			return nil, fmt.Errorf("hsm: ECDSA digest is %d bytes, want %d for %v", len(msg), opts.HashFunc().Size(), opts.HashFunc())
		}
		if err := k.t.acquire(ctx); err != nil {
			return nil, err
		}
		defer k.t.release()
		sig, err := k.c11.Sign(nil, msg, opts)
		if err != nil {
			return nil, fmt.Errorf("hsm: ECDSA sign: %w", mapPoolErr(err))
		}
		return sig, nil
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrUnsupported, k.alg)
}

// KeyAttributes are the security attributes of a private key as the token
// reports them.
type KeyAttributes struct {
	Token, Private, Sensitive, Extractable, Modifiable bool
	AlwaysSensitive, NeverExtractable                  bool
}

// Attributes reads the private key's security attributes from the token.
func (k *Key) Attributes(ctx context.Context) (KeyAttributes, error) {
	var a KeyAttributes
	err := k.t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		attrs, err := k.t.p.GetAttributeValue(sh, k.priv, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		})
		if err != nil {
			return p11err("C_GetAttributeValue", err)
		}
		b := func(i int) bool { return len(attrs[i].Value) == 1 && attrs[i].Value[0] != 0 }
		a = KeyAttributes{b(0), b(1), b(2), b(3), b(4), b(5), b(6)}
		return nil
	})
	return a, err
}

// GenerateKey creates a key pair of alg inside the token. The private key is
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE and not
// CKA_MODIFIABLE; both halves carry CKA_LABEL label and CKA_ID the
// fingerprint. Labels are unique in the token: an existing label (of any
// object) gives ErrDuplicateLabel.
//
// The pair is first generated under a random pending id, then given its
// fingerprint as CKA_ID and copied into a non-modifiable object (PKCS#11 lets
// CKA_MODIFIABLE change only in C_CopyObject); lookups ignore pending and
// modifiable leftovers of an interrupted generation.
func (t *Token) GenerateKey(ctx context.Context, label string, alg Algorithm) (*Key, error) {
	if label == "" {
		return nil, errors.New("hsm: GenerateKey: empty label")
	}
	var params []byte
	var mech uint
	var keyType uint
	switch alg {
	case Ed25519:
		params, mech, keyType = oidEd25519, ckmECEdwardsKeyPairGen, ckkECEdwards
	case ECDSAP256:
		params, mech, keyType = oidP256, pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKK_EC
	default:
		return nil, fmt.Errorf("%w: algorithm %q (use %q or %q)", ErrUnsupported, alg, Ed25519, ECDSAP256)
	}
	t.genMu.Lock()
	defer t.genMu.Unlock()
	var id string
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		dup, err := t.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}, 1)
		if err != nil {
			return err
		}
		if len(dup) > 0 {
			return fmt.Errorf("%w: %q", ErrDuplicateLabel, label)
		}
		tmpID := make([]byte, len(pendingIDPrefix)+16)
		copy(tmpID, pendingIDPrefix)
		if _, err := rand.Read(tmpID[len(pendingIDPrefix):]); err != nil {
			return err
		}
		pubT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, tmpID),
		}
		privT := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, tmpID),
		}
		pubH, privH, err := t.p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubT, privT)
		if err != nil {
			return p11err("C_GenerateKeyPair", err)
		}
		pub, err := t.readPublic(sh, pubH, alg)
		if err != nil {
			_ = t.p.DestroyObject(sh, privH)
			_ = t.p.DestroyObject(sh, pubH)
			return err
		}
		id, err = manifest.Fingerprint(pub)
		if err != nil {
			return err
		}
		rawID, _ := hex.DecodeString(id)
		finish := func() error {
			for _, h := range []pkcs11.ObjectHandle{privH, pubH} {
				if err := t.p.SetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, rawID)}); err != nil {
					return p11err("C_SetAttributeValue", err)
				}
				if _, err := t.p.CopyObject(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false)}); err != nil {
					return p11err("C_CopyObject", err)
				}
				if err := t.p.DestroyObject(sh, h); err != nil {
					return p11err("C_DestroyObject", err)
				}
			}
			return nil
		}
		if err := finish(); err != nil {
			_ = t.p.DestroyObject(sh, privH)
			_ = t.p.DestroyObject(sh, pubH)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.cfg.Logger.Info("hsm: key generated", "key_id", id, "label", label, "algorithm", string(alg))
	return t.FindKey(ctx, id)
}

// find returns up to max handles matching template (max <= 0: all).
func (t *Token) find(sh pkcs11.SessionHandle, template []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	if err := t.p.FindObjectsInit(sh, template); err != nil {
		return nil, p11err("C_FindObjectsInit", err)
	}
	var out []pkcs11.ObjectHandle
	for {
		hs, _, err := t.p.FindObjects(sh, maxObjectsPerFindObject)
		if err != nil {
			_ = t.p.FindObjectsFinal(sh)
			return nil, p11err("C_FindObjects", err)
		}
		out = append(out, hs...)
		if len(hs) == 0 || (max > 0 && len(out) >= max) {
			break
		}
	}
	if err := t.p.FindObjectsFinal(sh); err != nil {
		return nil, p11err("C_FindObjectsFinal", err)
	}
	return out, nil
}

// FindKey finds a finished signing key by id (see [Key.ID]); ErrKeyNotFound
// when absent. Keys are found again after the token is closed and reopened.
func (t *Token) FindKey(ctx context.Context, id string) (*Key, error) {
	rawID, err := hex.DecodeString(id)
	if err != nil || len(rawID) != fingerprintBytes {
		return nil, fmt.Errorf("%w: malformed id %q (want %d hex digits)", ErrKeyNotFound, id, 2*fingerprintBytes)
	}
	var k *Key
	err = t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		privs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, rawID),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		}, 2)
		if err != nil {
			return err
		}
		if len(privs) == 0 {
			return fmt.Errorf("%w: id %s", ErrKeyNotFound, id)
		}
		pubs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, rawID),
		}, 1)
		if err != nil {
			return err
		}
		if len(pubs) == 0 {
			return fmt.Errorf("%w: public half of id %s", ErrKeyNotFound, id)
		}
		attrs, err := t.p.GetAttributeValue(sh, privs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		})
		if err != nil {
			return p11err("C_GetAttributeValue", err)
		}
		var alg Algorithm
		switch bytesToUlong(attrs[0].Value) {
		case ckkECEdwards:
			alg = Ed25519
		case pkcs11.CKK_EC:
			alg = ECDSAP256
		default:
			return fmt.Errorf("%w: key type %#x of id %s", ErrUnsupported, bytesToUlong(attrs[0].Value), id)
		}
		pub, err := t.readPublic(sh, pubs[0], alg)
		if err != nil {
			return err
		}
		if fp, err := manifest.Fingerprint(pub); err != nil || fp != id {
			return fmt.Errorf("%w: id %s does not match its public key", ErrKeyNotFound, id)
		}
		k = &Key{t: t, id: id, label: string(attrs[1].Value), alg: alg, pub: pub, priv: privs[0]}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if k.alg == ECDSAP256 {
		s, err := t.c11.FindKeyPair(rawID, nil)
		if err != nil {
			return nil, fmt.Errorf("hsm: crypto11 find %s: %w", id, mapPoolErr(err))
		}
		if s == nil {
			return nil, fmt.Errorf("%w: id %s (crypto11)", ErrKeyNotFound, id)
		}
		k.c11 = s
	}
	return k, nil
}

// FindKeyByLabel finds a signing key by its unique label.
func (t *Token) FindKeyByLabel(ctx context.Context, label string) (*Key, error) {
	var id []byte
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		}, 1)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: label %q", ErrKeyNotFound, label)
		}
		a, err := t.p.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return p11err("C_GetAttributeValue", err)
		}
		id = a[0].Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.FindKey(ctx, hex.EncodeToString(id))
}

// KeyIDs lists the ids of the finished signing keys in the token.
func (t *Token) KeyIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		}, 0)
		if err != nil {
			return err
		}
		for _, h := range hs {
			a, err := t.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
			if err != nil {
				return p11err("C_GetAttributeValue", err)
			}
			if len(a[0].Value) == fingerprintBytes {
				ids = append(ids, hex.EncodeToString(a[0].Value))
			}
		}
		return nil
	})
	return ids, err
}

// SigningKeyIDs lists the ids of every signing key object in the token,
// private or public half, finished or not: what a manifest would have to
// account for.
func (t *Token) SigningKeyIDs(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			hs, err := t.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}, 0)
			if err != nil {
				return err
			}
			for _, h := range hs {
				a, err := t.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
				if err != nil {
					return p11err("C_GetAttributeValue", err)
				}
				id := hex.EncodeToString(a[0].Value)
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		return nil
	})
	return ids, err
}

// DestroyPrivateKey destroys the private half of signing key id (every
// private object with that CKA_ID), keeping the public half. After it the
// token can never sign with the key again. ErrKeyNotFound when there is no
// private object.
func (t *Token) DestroyPrivateKey(ctx context.Context, id string) error {
	rawID, err := hex.DecodeString(id)
	if err != nil {
		rawID = []byte(id) // a pending: id of an interrupted generation
	}
	return t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, rawID),
		}, 0)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: private key %s", ErrKeyNotFound, id)
		}
		for _, h := range hs {
			if err := t.p.DestroyObject(sh, h); err != nil {
				return p11err("C_DestroyObject", err)
			}
		}
		t.cfg.Logger.Info("hsm: private key destroyed", "key_id", id)
		return nil
	})
}

// DestroyKey destroys both halves of the signing key id. Only for keys that
// were never published: a published key's public half must be kept for
// verification (the manifest keeps it).
func (t *Token) DestroyKey(ctx context.Context, id string) error {
	rawID, err := hex.DecodeString(id)
	if err != nil || len(rawID) != fingerprintBytes {
		return fmt.Errorf("%w: malformed id %q", ErrKeyNotFound, id)
	}
	return t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, rawID)}, 0)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: id %s", ErrKeyNotFound, id)
		}
		for _, h := range hs {
			if err := t.p.DestroyObject(sh, h); err != nil {
				return p11err("C_DestroyObject", err)
			}
		}
		return nil
	})
}

func (t *Token) readPublic(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, alg Algorithm) (crypto.PublicKey, error) {
	a, err := t.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, p11err("C_GetAttributeValue", err)
	}
	point := a[0].Value
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 {
		raw = point // some modules return the bare point
	}
	switch alg {
	case Ed25519:
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("hsm: Ed25519 public key is %d bytes", len(raw))
		}
		return ed25519.PublicKey(bytes.Clone(raw)), nil
	case ECDSAP256:
		pk, err := ecdsa.ParseUncompressedPublicKey(ellipticP256(), raw)
		if err != nil {
			return nil, fmt.Errorf("hsm: ECDSA public key: %w", err)
		}
		return pk, nil
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrUnsupported, alg)
}

func bytesToUlong(b []byte) uint {
	// PKCS#11 CK_ULONG in native (little-endian on the supported platforms) order.
	var n uint
	for i := len(b) - 1; i >= 0; i-- {
		n = n<<8 | uint(b[i])
	}
	return n
}

func ellipticP256() elliptic.Curve { return elliptic.P256() }
