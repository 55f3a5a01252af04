package surveil

import (
	"encoding/binary"
	"math"
	"math/bits"
	"testing"

	"github.com/tradecore/tradecore/core"
)

// FuzzObserve feeds arbitrary event sequences (any kind, account, instrument,
// price, quantity, reason and time, including ones the engine never emits,
// such as a journal read back from a damaged file) to a Monitor with every
// detector acting through a lane that refuses every third submission. It
// must not panic, and its bounded state must stay consistent.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 16*8))
	seed := []byte{
		1, 1, 1, 1, 1, 5, 10, 0, 50, 0, 0, 0, 1, 0, 0, 1, // accepted
		3, 2, 2, 1, 1, 5, 10, 0, 5, 0, 0, 0, 1, 0, 0, 2, // executed
		4, 1, 1, 1, 1, 5, 10, 0, 50, 0, 0, 0, 1, 0, 1, 3, // cancelled
		15, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, // admin
	}
	f.Add(seed)
	f.Add([]byte{1, 1, 1, 1, 1, 5, 10, 0, 50, 0, 0, 0, 1, 0, 0, 0x81, 1, 1, 1, 1, 1, 6, 10, 0, 50, 0, 0, 0, 1, 0, 1, 0x81}) // time before 0
	f.Add(append(append([]byte{}, seed...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	reasons := []core.Reason{core.ReasonNone, core.CancelRequested, core.CancelMass, core.CancelKillSwitch, core.AdminKill,
		core.AdminKillRelease, core.AdminAccountStatus, core.AdminSetLimit, core.CancelSTPDecrement, core.ExpireEndOfDay}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		m, err := New(Config{
			Accounts: []Ref{{ID: 1, Owner: 7, Firm: 1}, {ID: 2, Owner: 7, Firm: 2}, {ID: 3, Firm: 1, Proprietary: true}, {ID: 4, Firm: 1}},
			Submit:   func(*core.Command) bool { n++; return n%3 != 0 },
			Wash:     Wash{Action: ActionKill}, Layering: Layering{Action: ActionSuspend}, Spoofing: Spoofing{Action: ActionKill},
			Rapid: Rapid{Action: ActionThrottle}, Ramp: Ramp{Action: ActionKill}, FrontRun: FrontRun{Action: ActionKill},
			PumpDump: PumpDump{Action: ActionKill}, MarkClose: MarkClose{Action: ActionKill, Window: 3600e9},
		})
		if err != nil {
			t.Fatal(err)
		}
		var (
			out  Output
			now  int64
			evs  []core.Event
			seq  uint64
			accs = []uint32{0, 1, 2, 3, 4, 5, core.MaxAccountID, math.MaxUint32}
			inss = []uint32{0, 1, 2, core.MaxInstrumentID, core.MaxInstrumentID + 1, math.MaxUint32}
		)
		for len(data) >= 16 {
			b := data[:16]
			data = data[16:]
			now += int64(b[14]) * 1e7
			if b[15]&0x80 != 0 {
				now -= 5e9 // time may go back
			}
			seq++
			ev := core.Event{
				Seq: seq, Time: now, Kind: core.EventKind(b[0] % 19), Side: core.Side(b[1] % 4),
				Account: accs[b[2]%8], ContraAccount: accs[b[3]%8], Instrument: inss[b[4]%6],
				OrderID: uint64(b[5] % 24), ContraOrderID: uint64(b[13] % 24), MatchID: seq,
				Price: int64(int16(binary.LittleEndian.Uint16(b[6:]))), Qty: int64(int16(binary.LittleEndian.Uint16(b[8:]))),
				Leaves: int64(b[10]) - 8, ContraLeaves: int64(b[11]) - 8, Reason: reasons[b[12]%10], Type: core.OrderType(b[1] >> 4 % 6),
				TIF: core.TIF(b[2] >> 4 % 6), OrigClOrdID: uint64(b[3] >> 4 % 8),
			}
			evs = append(evs, ev)
			if b[15]&1 != 0 || len(evs) == 4 {
				m.Observe(evs, &out)
				evs = evs[:0]
				out.Reset()
			}
			if b[15]&2 != 0 {
				m.Tick(now, &out)
			}
		}
		m.Observe(evs, &out)
		m.Tick(now+1e12, &out)
		for ei := range m.ents {
			e := &m.ents[ei]
			used := 0
			for i := range e.ids {
				if e.ids[i] != 0 {
					used++
				}
				if e.ids[i] == 0 && (e.inst[i] != 0 || e.member[i]|e.based[i] != 0) {
					t.Fatalf("entity %d slot %d free but not cleared", ei, i)
				}
				if (e.member[i]|e.based[i])&^e.live != 0 {
					t.Fatalf("entity %d slot %d marked for a pattern that is not live", ei, i)
				}
			}
			if used != e.n {
				t.Fatalf("entity %d: %d slots used, n = %d", ei, used, e.n)
			}
			for j := e.live; j != 0; j &= j - 1 {
				if p := &e.pats[bits.TrailingZeros8(j)]; int(p.n) > MaxEvidence || int(p.nc) > MaxEvidence || int(p.nm) > len(p.matches) {
					t.Fatalf("entity %d: pattern evidence out of bounds", ei)
				}
			}
		}
		for _, r := range m.decide {
			if m.ents[r.ent].live&(1<<r.pat) == 0 {
				t.Fatalf("a decision is pending for a pattern that is not live")
			}
		}
	})
}
