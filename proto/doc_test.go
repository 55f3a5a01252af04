package proto_test

import (
	"encoding/binary"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/proto"
)

// docField is one row of a message table in docs/protocol.md.
type docField struct {
	off, size int
	name      string
}

// docMessages parses the message sections of docs/protocol.md: for each type
// letter its name, length and field rows.
func docMessages(t *testing.T) (map[proto.Type]string, map[proto.Type]int, map[proto.Type][]docField) {
	t.Helper()
	doc, err := os.ReadFile("../docs/protocol.md")
	require.NoError(t, err)
	names, sizes, fields := map[proto.Type]string{}, map[proto.Type]int{}, map[proto.Type][]docField{}
	head := regexp.MustCompile("^### `(.)` (\\w+)(?: and `(.)` (\\w+))? — (\\d+) bytes$")
	row := regexp.MustCompile(`^\| (\d+) \| (\d+) \| (\w+) \|`)
	var cur []proto.Type
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			cur = nil
		}
		if m := head.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[5])
			for i := 1; i <= 3 && m[i] != ""; i += 2 {
				ty := proto.Type(m[i][0])
				names[ty], sizes[ty] = m[i+1], n
				cur = append(cur, ty)
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && cur != nil {
			off, _ := strconv.Atoi(m[1])
			size, _ := strconv.Atoi(m[2])
			for _, ty := range cur {
				fields[ty] = append(fields[ty], docField{off, size, m[3]})
			}
		}
	}
	return names, sizes, fields
}

// TestProtocolDoc checks docs/protocol.md against the encoder: every type is
// documented with its length; the rows tile the body without gaps or
// overlaps; every documented field is the struct field of that name and is
// encoded at the documented offset and width; every struct field is
// documented.
func TestProtocolDoc(t *testing.T) {
	names, sizes, fields := docMessages(t)
	for _, ty := range proto.Types() {
		m := proto.New(ty)
		rt := reflect.TypeOf(m).Elem()
		t.Run(rt.Name(), func(t *testing.T) {
			require.Equal(t, rt.Name(), names[ty], "the doc's name of type %s", ty)
			require.Equal(t, proto.Size(ty), sizes[ty], "the doc's length of %s", rt.Name())
			// Distinct values per field, then the bytes at each documented offset.
			rv := reflect.ValueOf(m).Elem()
			want := map[string]uint64{}
			for i := range rv.NumField() {
				f := rv.Field(i)
				v := uint64(0x11*(i+1)) | uint64(i+1)<<8
				switch f.Kind() {
				case reflect.Array:
					for j := range f.Len() {
						f.Index(j).SetUint(uint64(i*16 + j + 1))
					}
				case reflect.Int64:
					f.SetInt(int64(v))
				default:
					v &= 1<<(8*f.Type().Size()) - 1
					f.SetUint(v)
				}
				want[rt.Field(i).Name] = v
			}
			// A length field (XLen) holds the length of the array X that
			// follows it: its full size, the only value valid with every
			// byte of X set.
			for i := range rv.NumField() {
				name := rt.Field(i).Name
				if arr, ok := rt.FieldByName(strings.TrimSuffix(name, "Len")); ok && name != arr.Name && arr.Type.Kind() == reflect.Array {
					rv.Field(i).SetUint(uint64(arr.Type.Len()))
					want[name] = uint64(arr.Type.Len())
				}
			}
			frame := m.AppendFrame(nil)
			require.Len(t, frame, proto.Size(ty))
			next := proto.HeaderSize
			seen := map[string]bool{}
			for _, df := range fields[ty] {
				require.Equal(t, next, df.off, "%s: row %s starts at %d, the row before ends at %d", rt.Name(), df.name, df.off, next)
				next = df.off + df.size
				if df.name == "pad" {
					assert.Equal(t, make([]byte, df.size), frame[df.off:next], "padding is zero")
					continue
				}
				sf, ok := rt.FieldByName(df.name)
				require.True(t, ok, "%s has no field %s", rt.Name(), df.name)
				require.EqualValues(t, sf.Type.Size(), df.size, "%s.%s width", rt.Name(), df.name)
				seen[df.name] = true
				got := frame[df.off:next]
				if sf.Type.Kind() == reflect.Array {
					idx := sf.Index[0]
					for j := range df.size {
						require.Equal(t, byte(idx*16+j+1), got[j], "%s.%s byte %d", rt.Name(), df.name, j)
					}
					continue
				}
				var buf [8]byte
				copy(buf[:], got)
				require.Equal(t, want[df.name], binary.LittleEndian.Uint64(buf[:]), "%s.%s at offset %d", rt.Name(), df.name, df.off)
			}
			require.Equal(t, proto.Size(ty), next, "%s: the rows end at %d", rt.Name(), next)
			for i := range rt.NumField() {
				assert.True(t, seen[rt.Field(i).Name], "%s.%s is not documented", rt.Name(), rt.Field(i).Name)
			}
			// And back.
			back, err := proto.Decode(frame)
			require.NoError(t, err)
			require.Equal(t, m, back)
		})
	}
}

// TestGatewayReasonsDocumented keeps the 6xx table of docs/protocol.md and
// the code in step.
func TestGatewayReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	require.NoError(t, err)
	rows := regexp.MustCompile(`(?m)^\| (6\d\d) \| ([a-z-]+) \|`).FindAllStringSubmatch(string(doc), -1)
	got := map[int]string{}
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		got[n] = r[2]
	}
	want := map[int]string{}
	for _, r := range proto.GatewayReasons() {
		want[int(r)] = proto.ReasonName(r)
	}
	require.Equal(t, want, got)
}

// TestAttestReasonsDocumented keeps the attestation codes (8xx) that
// LoginRejected and Logout carry in step with docs/attestation.md (whose
// table package tpm checks against its own codes).
func TestAttestReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/attestation.md")
	require.NoError(t, err)
	rows := regexp.MustCompile(`(?m)^\| (8\d\d) \| ([a-z-]+) \|`).FindAllStringSubmatch(string(doc), -1)
	got := map[int]string{}
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		got[n] = r[2]
	}
	want := map[int]string{}
	for _, r := range proto.AttestReasons() {
		want[int(r)] = proto.ReasonName(r)
	}
	require.Equal(t, want, got)
}
