package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/tradecore/tradecore/internal/atomicfile"
)

// DataClass names a class of personal data; each class has its own
// key-encryption key (KEK) in the token.
type DataClass string

// The data classes.
const (
	ClassAccountNumber DataClass = "account-number"
	ClassTaxID         DataClass = "tax-id"
	ClassBankDetails   DataClass = "bank-details"
	// ClassAPIKeySecret holds the order-entry gateway's API key secrets
	// (gateway/apikey): HMAC keys, not personal data, sealed all the same so
	// that no secret is ever stored in plain text.
	ClassAPIKeySecret DataClass = "api-key-secret"
)

// DataClasses lists the classes a Vault accepts.
var DataClasses = []DataClass{ClassAccountNumber, ClassTaxID, ClassBankDetails, ClassAPIKeySecret}

// KeyringFile is the wrapped data keys' file inside VaultConfig.Dir.
const KeyringFile = "datakeys.json"

const (
	sealMagic    = "TCS1"
	gcmNonceSize = 12
	gcmTagBits   = 128
	maxNameLen   = 255
)

// RecordVaultShredded is the audit record type of a crypto-shred (body:
// [ShredRecord]).
const RecordVaultShredded = "vault.shredded"

// ShredRecord is the body of a vault.shredded audit record. Subject is the
// random subject id, never personal data.
type ShredRecord struct {
	Subject string `json:"subject"`
}

// VaultConfig configures a Vault. Dir is required; Shred also needs Recorder.
type VaultConfig struct {
	// Dir holds datakeys.json (e.g. <data-dir>/keys); created 0700.
	Dir string
	// Recorder receives a vault.shredded record before each shred, so the
	// shred can be re-applied after a backup of the token and the keyring is
	// restored. Shred refuses (ErrNoRecorder) without one.
	Recorder Recorder
	// Shredded lists subjects shredded before (from the audit log's
	// vault.shredded records); NewVault re-applies them, see ApplyShreds.
	Shredded []string
}

// Vault seals personal data at rest (envelope encryption):
//
//   - per data class, an AES-256 KEK lives in the token (versioned; rotation
//     re-wraps the data keys);
//   - per subject, an AES-256 subject key lives in the token; destroying it
//     (Shred) makes every value sealed for the subject unopenable, in every
//     class and every backup of the keyring (crypto-shredding);
//   - per (class, subject), an AES-256-GCM data key (DEK) seals the values in
//     Go. The DEK is stored doubly wrapped in datakeys.json:
//     AES-GCM_KEK(AES-GCM_subject(DEK)); both wraps run inside the token.
//
// Unwrapped DEKs are cached in memory until Shred or close. The ciphertext
// format is in docs/keys.md. Safe for concurrent use.
type Vault struct {
	tok  *Token
	path string
	rec  Recorder

	mu    sync.Mutex
	ring  keyring
	cache map[dekRef][]byte
}

type dekRef struct {
	class   DataClass
	subject string
	version uint32
}

type keyring struct {
	KEKVersions map[DataClass]uint32 `json:"kek_versions"`
	DEKs        []wrappedDEK         `json:"deks"`
}

type wrappedDEK struct {
	Class      DataClass `json:"class"`
	Subject    string    `json:"subject"`
	Version    uint32    `json:"version"`     // DEK version, named by ciphertexts
	KEKVersion uint32    `json:"kek_version"` // outer wrap
	Wrapped    []byte    `json:"wrapped"`     // nonce ‖ GCM_KEK(nonce ‖ GCM_subject(DEK))
}

// NewVault opens the keyring in cfg.Dir, creating the class KEKs in tok when
// missing. The close function drops the cached data keys; it does not close
// tok.
func NewVault(ctx context.Context, tok *Token, cfg VaultConfig) (*Vault, func() error, error) {
	if cfg.Dir == "" {
		return nil, nil, errors.New("hsm: VaultConfig.Dir is empty: give the folder for datakeys.json")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("hsm: create vault dir: %w", err)
	}
	v := &Vault{tok: tok, path: filepath.Join(cfg.Dir, KeyringFile), rec: cfg.Recorder, cache: map[dekRef][]byte{}}
	data, err := os.ReadFile(v.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.ring.KEKVersions = map[DataClass]uint32{}
	case err != nil:
		return nil, nil, fmt.Errorf("hsm: read keyring: %w", err)
	default:
		if err := json.Unmarshal(data, &v.ring); err != nil {
			return nil, nil, fmt.Errorf("hsm: parse keyring: %w", err)
		}
		if v.ring.KEKVersions == nil {
			v.ring.KEKVersions = map[DataClass]uint32{}
		}
	}
	changed := false
	for _, c := range DataClasses {
		if v.ring.KEKVersions[c] != 0 {
			continue
		}
		if _, err := tok.secretKey(ctx, kekID(c, 1), kekLabel(c, 1), true); err != nil {
			return nil, nil, err
		}
		v.ring.KEKVersions[c] = 1
		changed = true
	}
	if changed {
		if err := v.save(); err != nil {
			return nil, nil, err
		}
	}
	if len(cfg.Shredded) > 0 {
		if _, err := v.ApplyShreds(ctx, cfg.Shredded); err != nil {
			return nil, nil, err
		}
	}
	return v, v.close, nil
}

func (v *Vault) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, dek := range v.cache {
		clear(dek)
		delete(v.cache, k)
	}
	return nil
}

func kekID(c DataClass, ver uint32) string { return "kek:" + string(c) + ":" + strconv.Itoa(int(ver)) }
func kekLabel(c DataClass, ver uint32) string {
	return "tradecore-kek-" + string(c) + "-v" + strconv.Itoa(int(ver))
}
func subjectID(s string) string    { return "subject:" + s }
func subjectLabel(s string) string { return "tradecore-subject-" + s }

func validClass(c DataClass) error {
	for _, k := range DataClasses {
		if c == k {
			return nil
		}
	}
	return fmt.Errorf("%w: data class %q", ErrUnsupported, c)
}

// KEKVersion returns the current KEK version of class.
func (v *Vault) KEKVersion(class DataClass) uint32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ring.KEKVersions[class]
}

// Seal encrypts plaintext of class for subject (a random id, never personal
// data itself). aad is authenticated, not stored; pass the same to Open.
func (v *Vault) Seal(ctx context.Context, class DataClass, subject string, plaintext, aad []byte) ([]byte, error) {
	if err := validClass(class); err != nil {
		return nil, err
	}
	if subject == "" || len(subject) > maxNameLen-len("tradecore-subject-") {
		return nil, errors.New("hsm: Seal: subject must be 1..237 bytes")
	}
	ref, dek, err := v.currentDEK(ctx, class, subject)
	if err != nil {
		return nil, err
	}
	hdr := sealHeader(ref)
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(hdr)+gcmNonceSize, len(hdr)+gcmNonceSize+len(plaintext)+aead.Overhead())
	copy(out, hdr)
	if _, err := rand.Read(out[len(hdr):]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[len(hdr):], plaintext, append(hdr, aad...)), nil
}

// Open decrypts a Seal ciphertext of class. ErrShredded once the subject's
// key was destroyed; ErrBadCiphertext when altered or of another class.
func (v *Vault) Open(ctx context.Context, class DataClass, ciphertext, aad []byte) ([]byte, error) {
	ref, hdrLen, err := parseSealHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	if ref.class != class {
		return nil, fmt.Errorf("%w: sealed for class %q, not %q", ErrBadCiphertext, ref.class, class)
	}
	dek, err := v.dek(ctx, ref)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < hdrLen+gcmNonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrBadCiphertext)
	}
	hdr := ciphertext[:hdrLen]
	pt, err := aead.Open(nil, ciphertext[hdrLen:hdrLen+gcmNonceSize], ciphertext[hdrLen+gcmNonceSize:], append(bytes.Clone(hdr), aad...))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrBadCiphertext)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// sealHeader: "TCS1" ‖ len(class) ‖ class ‖ len(subject) ‖ subject ‖ uint32be(DEK version).
func sealHeader(r dekRef) []byte {
	h := make([]byte, 0, 4+2+len(r.class)+len(r.subject)+4)
	h = append(h, sealMagic...)
	h = append(h, byte(len(r.class)))
	h = append(h, r.class...)
	h = append(h, byte(len(r.subject)))
	h = append(h, r.subject...)
	return binary.BigEndian.AppendUint32(h, r.version)
}

func parseSealHeader(b []byte) (dekRef, int, error) {
	var r dekRef
	if len(b) < 4 || string(b[:4]) != sealMagic {
		return r, 0, fmt.Errorf("%w: not a tradecore sealed value", ErrBadCiphertext)
	}
	i := 4
	read := func() (string, bool) {
		if i >= len(b) {
			return "", false
		}
		n := int(b[i])
		if n == 0 || i+1+n > len(b) {
			return "", false
		}
		s := string(b[i+1 : i+1+n])
		i += 1 + n
		return s, true
	}
	c, ok1 := read()
	s, ok2 := read()
	if !ok1 || !ok2 || i+4 > len(b) {
		return r, 0, fmt.Errorf("%w: truncated header", ErrBadCiphertext)
	}
	r = dekRef{class: DataClass(c), subject: s, version: binary.BigEndian.Uint32(b[i:])}
	return r, i + 4, nil
}

func (v *Vault) findDEK(ref dekRef) *wrappedDEK {
	for i := range v.ring.DEKs {
		d := &v.ring.DEKs[i]
		if d.Class == ref.class && d.Subject == ref.subject && d.Version == ref.version {
			return d
		}
	}
	return nil
}

// currentDEK returns the newest DEK of (class, subject), creating one.
func (v *Vault) currentDEK(ctx context.Context, class DataClass, subject string) (dekRef, []byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var newest *wrappedDEK
	for i := range v.ring.DEKs {
		d := &v.ring.DEKs[i]
		if d.Class == class && d.Subject == subject && (newest == nil || d.Version > newest.Version) {
			newest = d
		}
	}
	if newest != nil {
		ref := dekRef{class, subject, newest.Version}
		dek, err := v.unwrapLocked(ctx, ref, newest)
		return ref, dek, err
	}
	ref := dekRef{class, subject, 1}
	subj, err := v.tok.secretKey(ctx, subjectID(subject), subjectLabel(subject), true)
	if err != nil {
		return ref, nil, err
	}
	kekVer := v.ring.KEKVersions[class]
	kek, err := v.tok.secretKey(ctx, kekID(class, kekVer), kekLabel(class, kekVer), false)
	if err != nil {
		return ref, nil, err
	}
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return ref, nil, err
	}
	ad := dekAD(ref)
	inner, err := v.tok.gcm(ctx, true, subj, ad, dek)
	if err != nil {
		return ref, nil, err
	}
	outer, err := v.tok.gcm(ctx, true, kek, append(ad, byte(kekVer>>24), byte(kekVer>>16), byte(kekVer>>8), byte(kekVer)), inner)
	if err != nil {
		return ref, nil, err
	}
	v.ring.DEKs = append(v.ring.DEKs, wrappedDEK{Class: class, Subject: subject, Version: 1, KEKVersion: kekVer, Wrapped: outer})
	if err := v.save(); err != nil {
		v.ring.DEKs = v.ring.DEKs[:len(v.ring.DEKs)-1]
		return ref, nil, err
	}
	v.cache[ref] = dek
	return ref, dek, nil
}

func dekAD(ref dekRef) []byte {
	return append([]byte("tradecore dek v1\x00"+string(ref.class)+"\x00"+ref.subject+"\x00"), byte(ref.version>>24), byte(ref.version>>16), byte(ref.version>>8), byte(ref.version))
}

func (v *Vault) dek(ctx context.Context, ref dekRef) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	w := v.findDEK(ref)
	if w == nil {
		return nil, fmt.Errorf("%w: no data key for the subject (class %s, version %d)", ErrShredded, ref.class, ref.version)
	}
	return v.unwrapLocked(ctx, ref, w)
}

func (v *Vault) unwrapLocked(ctx context.Context, ref dekRef, w *wrappedDEK) ([]byte, error) {
	if dek, ok := v.cache[ref]; ok {
		return dek, nil
	}
	kek, err := v.tok.secretKey(ctx, kekID(ref.class, w.KEKVersion), kekLabel(ref.class, w.KEKVersion), false)
	if err != nil {
		return nil, err
	}
	subj, err := v.tok.secretKey(ctx, subjectID(ref.subject), subjectLabel(ref.subject), false)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: subject key destroyed", ErrShredded)
	}
	if err != nil {
		return nil, err
	}
	ad := dekAD(ref)
	kv := w.KEKVersion
	inner, err := v.tok.gcm(ctx, false, kek, append(bytes.Clone(ad), byte(kv>>24), byte(kv>>16), byte(kv>>8), byte(kv)), w.Wrapped)
	if err != nil {
		return nil, err
	}
	dek, err := v.tok.gcm(ctx, false, subj, ad, inner)
	if err != nil {
		return nil, err
	}
	v.cache[ref] = dek
	return dek, nil
}

// RotateKEK creates the next KEK version of class in the token, re-wraps
// every data key of the class under it (only the outer wrap: the DEKs are
// never exposed), saves the keyring and destroys the old KEK. Existing
// ciphertexts open unchanged. It returns the new version.
func (v *Vault) RotateKEK(ctx context.Context, class DataClass) (uint32, error) {
	if err := validClass(class); err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	oldVer := v.ring.KEKVersions[class]
	newVer := oldVer + 1
	oldK, err := v.tok.secretKey(ctx, kekID(class, oldVer), kekLabel(class, oldVer), false)
	if err != nil {
		return 0, err
	}
	newK, err := v.tok.secretKey(ctx, kekID(class, newVer), kekLabel(class, newVer), true)
	if err != nil {
		return 0, err
	}
	ring := keyring{KEKVersions: map[DataClass]uint32{}, DEKs: append([]wrappedDEK(nil), v.ring.DEKs...)}
	for c, n := range v.ring.KEKVersions {
		ring.KEKVersions[c] = n
	}
	ring.KEKVersions[class] = newVer
	for i := range ring.DEKs {
		d := &ring.DEKs[i]
		if d.Class != class {
			continue
		}
		ad := dekAD(dekRef{d.Class, d.Subject, d.Version})
		ov := d.KEKVersion
		inner, err := v.tok.gcm(ctx, false, oldK, append(bytes.Clone(ad), byte(ov>>24), byte(ov>>16), byte(ov>>8), byte(ov)), d.Wrapped)
		if err != nil {
			return 0, err
		}
		outer, err := v.tok.gcm(ctx, true, newK, append(bytes.Clone(ad), byte(newVer>>24), byte(newVer>>16), byte(newVer>>8), byte(newVer)), inner)
		if err != nil {
			return 0, err
		}
		d.Wrapped, d.KEKVersion = outer, newVer
	}
	prev := v.ring
	v.ring = ring
	if err := v.save(); err != nil {
		v.ring = prev
		return 0, err
	}
	if err := v.tok.destroySecret(ctx, kekID(class, oldVer)); err != nil {
		v.tok.cfg.Logger.Warn("hsm: old KEK not destroyed", "class", string(class), "version", oldVer, "err", err)
	}
	v.tok.cfg.Logger.Info("hsm: KEK rotated", "class", string(class), "version", newVer)
	return newVer, nil
}

// Shred destroys the subject's key in the token and forgets its wrapped data
// keys: every value sealed for the subject, in any class, can never be opened
// again (ErrShredded). The shred is first recorded in the audit log
// (vault.shredded); if that fails nothing is destroyed. Because a restored
// backup of the token and of datakeys.json brings the subject key back, the
// daemon re-applies recorded shreds at start (VaultConfig.Shredded,
// ApplyShreds). Shredding an unknown subject is not an error.
func (v *Vault) Shred(ctx context.Context, subject string) error {
	if v.rec == nil {
		return fmt.Errorf("%w: a shred must be recorded to survive a restored backup; set VaultConfig.Recorder", ErrNoRecorder)
	}
	if subject == "" {
		return errors.New("hsm: Shred: empty subject")
	}
	if _, err := v.rec.Record(ctx, RecordVaultShredded, ShredRecord{Subject: subject}); err != nil {
		return fmt.Errorf("hsm: shred not recorded in the audit log, so not done: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	_, err := v.shredLocked(ctx, subject)
	return err
}

// ApplyShreds makes sure every listed subject is shredded: it destroys a
// subject key that is back in the token (a restored backup) and drops the
// subject's data keys. It records nothing (the list comes from the audit
// log) and reports how many subjects it found not shredded.
func (v *Vault) ApplyShreds(ctx context.Context, subjects []string) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, s := range subjects {
		undone, err := v.shredLocked(ctx, s)
		if err != nil {
			return n, err
		}
		if undone {
			n++
		}
	}
	if n > 0 {
		v.tok.cfg.Logger.Warn("hsm: re-applied shreds that a restored backup had undone", "subjects", n)
	}
	return n, nil
}

// shredLocked destroys the subject key and drops its DEKs; it reports
// whether anything of the subject was left.
func (v *Vault) shredLocked(ctx context.Context, subject string) (bool, error) {
	found := true
	if err := v.tok.destroySecret(ctx, subjectID(subject)); errors.Is(err, ErrKeyNotFound) {
		found = false
	} else if err != nil {
		return false, err
	}
	kept := v.ring.DEKs[:0]
	for _, d := range v.ring.DEKs {
		if d.Subject != subject {
			kept = append(kept, d)
		} else {
			found = true
		}
	}
	v.ring.DEKs = kept
	for ref, dek := range v.cache {
		if ref.subject == subject {
			clear(dek)
			delete(v.cache, ref)
		}
	}
	if !found {
		return false, nil
	}
	return true, v.save()
}

func (v *Vault) save() error {
	data, err := json.MarshalIndent(&v.ring, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(v.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("hsm: data-key store: %w", err)
	}
	return nil
}

// secretKey finds the AES key with CKA_ID id, or creates it when create is
// true and it is missing (ErrKeyNotFound otherwise).
func (t *Token) secretKey(ctx context.Context, id, label string, create bool) (pkcs11.ObjectHandle, error) {
	var h pkcs11.ObjectHandle
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
		}, 1)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			h = hs[0]
			return nil
		}
		if !create {
			return fmt.Errorf("%w: secret key %s", ErrKeyNotFound, id)
		}
		h, err = t.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		return p11err("C_GenerateKey", err)
	})
	return h, err
}

func (t *Token) destroySecret(ctx context.Context, id string) error {
	return t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		hs, err := t.find(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
		}, 0)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: secret key %s", ErrKeyNotFound, id)
		}
		for _, h := range hs {
			if err := t.p.DestroyObject(sh, h); err != nil {
				return p11err("C_DestroyObject", err)
			}
		}
		return nil
	})
}

// gcm runs AES-256-GCM inside the token: seal returns nonce ‖ ciphertext ‖
// tag; open takes the same.
func (t *Token) gcm(ctx context.Context, seal bool, key pkcs11.ObjectHandle, ad, in []byte) ([]byte, error) {
	var out []byte
	err := t.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var nonce []byte
		if seal {
			nonce = make([]byte, gcmNonceSize)
			if _, err := rand.Read(nonce); err != nil {
				return err
			}
		} else {
			if len(in) < gcmNonceSize+gcmTagBits/8 {
				return fmt.Errorf("%w: wrapped key too short", ErrBadCiphertext)
			}
			nonce, in = in[:gcmNonceSize], in[gcmNonceSize:]
		}
		params := pkcs11.NewGCMParams(nonce, ad, gcmTagBits)
		defer params.Free()
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
		if seal {
			if err := t.p.EncryptInit(sh, mech, key); err != nil {
				return p11err("C_EncryptInit", err)
			}
			ct, err := t.p.Encrypt(sh, in)
			if err != nil {
				return p11err("C_Encrypt", err)
			}
			out = append(nonce, ct...)
			return nil
		}
		if err := t.p.DecryptInit(sh, mech, key); err != nil {
			return p11err("C_DecryptInit", err)
		}
		pt, err := t.p.Decrypt(sh, in)
		if err != nil {
			return fmt.Errorf("%w: unwrap failed: %w", ErrBadCiphertext, p11err("C_Decrypt", err))
		}
		out = pt
		return nil
	})
	return out, err
}
