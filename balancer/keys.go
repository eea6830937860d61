package balancer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// MinKeyLen is the shortest master key NewKeyring accepts, in bytes.
const MinKeyLen = 32

// Labels that separate the two keys derived from one master key.
const (
	macLabel = "latch sticky token v1: mac key"
	encLabel = "latch sticky token v1: encryption key"
)

// builtinKey is the fixed key of BuiltinKeyring. It is public (it is in the
// source), so tokens sealed with it are obscured, not protected.
const builtinKey = "latch built-in sticky key: anyone can read this, set --cookie-keys"

// ringKey is one master key, expanded once so that opening a token costs no
// key schedule and no allocation.
type ringKey struct {
	id    byte         // first byte of SHA-256(master key), written in tokens
	block cipher.Block // AES-256 with the derived encryption key
	ipad  [sha256.BlockSize]byte
	opad  [sha256.BlockSize]byte
}

// scratch holds the CTR counter and key stream. They cannot live on the
// stack: passing a slice to cipher.Block.Encrypt, an interface method, makes
// the compiler move it to the heap. A sync.Pool of scratch keeps Open free of
// allocations.
type scratch struct {
	ctr, stream [aes.BlockSize]byte
}

// Keyring holds the keys that seal and open sticky tokens: the newest seals,
// all of them open, so keys rotate without logging anyone out. A Keyring is
// immutable after construction and safe for concurrent use; it must not be
// copied. Build one with NewKeyring or BuiltinKeyring.
type Keyring struct {
	_    noCopy
	keys []ringKey
	pool sync.Pool // of *scratch
}

// NewKeyring expands the given master keys, newest first. There must be at
// least one and each must be at least MinKeyLen bytes of random data. The
// master keys are not retained. Errors name the key by position, never its
// content.
func NewKeyring(keys [][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sticky keys: need at least one")
	}
	k := &Keyring{keys: make([]ringKey, len(keys))}
	for i, master := range keys {
		if len(master) < MinKeyLen {
			return nil, fmt.Errorf("sticky key %d is %d bytes, want at least %d", i+1, len(master), MinKeyLen)
		}
		if err := k.keys[i].init(master); err != nil {
			return nil, fmt.Errorf("sticky key %d: %w", i+1, err)
		}
	}
	return k, nil
}

// BuiltinKeyring returns a keyring holding one fixed, public key, so that
// replicas started without a key file still agree on every token. Tokens are
// then only obscured: anyone with latch's source can read and forge them.
// Callers should warn about that in their log.
func BuiltinKeyring() *Keyring {
	k, err := NewKeyring([][]byte{[]byte(builtinKey)})
	if err != nil {
		// Unreachable: the constant is long enough and AES accepts
		// every 32-byte key.
		panic("balancer: built-in key rejected: " + err.Error())
	}
	return k
}

// Len returns the number of keys in the ring.
func (k *Keyring) Len() int { return len(k.keys) }

func (r *ringKey) init(master []byte) error {
	sum := sha256.Sum256(master)
	r.id = sum[0]
	block, err := aes.NewCipher(derive(master, encLabel))
	if err != nil {
		return err
	}
	r.block = block
	// HMAC keys of one block or less are zero-padded, then XORed with
	// the pads (RFC 2104); the derived key is 32 bytes.
	mac := derive(master, macLabel)
	for i := range sha256.BlockSize {
		var b byte
		if i < len(mac) {
			b = mac[i]
		}
		r.ipad[i] = b ^ 0x36
		r.opad[i] = b ^ 0x5c
	}
	return nil
}

// derive returns HMAC-SHA256(master, label): one independent 32-byte key
// per label.
func derive(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// maxMACInput bounds what mac accepts: a token header and its largest
// plaintext.
const maxMACInput = headerLen + maxPlainLen

// mac returns HMAC-SHA256 over header || plaintext with this key. It is
// HMAC by hand over stack buffers because crypto/hmac allocates on every
// use; TestMACMatchesCryptoHMAC holds it to the standard.
func (r *ringKey) mac(header, plaintext []byte) [sha256.Size]byte {
	var in [sha256.BlockSize + maxMACInput]byte
	copy(in[:], r.ipad[:])
	n := sha256.BlockSize
	n += copy(in[n:], header)
	n += copy(in[n:], plaintext)
	inner := sha256.Sum256(in[:n])

	var out [sha256.BlockSize + sha256.Size]byte
	copy(out[:], r.opad[:])
	copy(out[sha256.BlockSize:], inner[:])
	return sha256.Sum256(out[:])
}

// xorKeyStream encrypts or decrypts data in place with AES-256-CTR, the
// counter block being iv || 0x00000000, incremented big-endian per block
// (as cipher.NewCTR does). data is at most two blocks long.
func (r *ringKey) xorKeyStream(s *scratch, iv, data []byte) {
	copy(s.ctr[:], iv)
	for off, ctr := 0, uint32(0); off < len(data); off, ctr = off+aes.BlockSize, ctr+1 {
		s.ctr[12], s.ctr[13], s.ctr[14], s.ctr[15] = byte(ctr>>24), byte(ctr>>16), byte(ctr>>8), byte(ctr)
		r.block.Encrypt(s.stream[:], s.ctr[:])
		chunk := data[off:]
		for i := range min(len(chunk), aes.BlockSize) {
			chunk[i] ^= s.stream[i]
		}
	}
}

func (k *Keyring) getScratch() *scratch {
	if s, ok := k.pool.Get().(*scratch); ok {
		return s
	}
	return new(scratch)
}

func (k *Keyring) putScratch(s *scratch) { k.pool.Put(s) }

// ParseKeys reads a key file: one key per line, newest first, each written
// as at least 64 hex digits (32 bytes; `openssl rand -hex 32` makes one).
// Surrounding whitespace is trimmed; blank lines and lines starting with '#'
// are ignored. Errors name the line number and never echo key material.
func ParseKeys(data []byte) ([][]byte, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
	var keys [][]byte
	lineNo := 0
	for line := range bytes.Lines(data) {
		lineNo++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if !isHex(line) {
			return nil, fmt.Errorf("line %d: a key must be hex digits only (make one with `openssl rand -hex 32`)", lineNo)
		}
		if len(line) < 2*MinKeyLen {
			return nil, fmt.Errorf("line %d: key has %d hex digits, want at least %d (make one with `openssl rand -hex 32`)", lineNo, len(line), 2*MinKeyLen)
		}
		if len(line)%2 != 0 {
			return nil, fmt.Errorf("line %d: key has an odd number of hex digits (%d)", lineNo, len(line))
		}
		key := make([]byte, len(line)/2)
		if _, err := hex.Decode(key, line); err != nil {
			// Unreachable after isHex; the error would quote a byte.
			return nil, fmt.Errorf("line %d: key is not valid hex", lineNo)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys found: want one key per line, 64 or more hex digits each")
	}
	return keys, nil
}

func isHex(s []byte) bool {
	for _, c := range s {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
