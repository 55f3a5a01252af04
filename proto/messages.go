package proto

import (
	"encoding/binary"

	"github.com/tradecore/tradecore/core"
)

var le = binary.LittleEndian

// Login is the client's first frame on either port (type TLogin, docs/protocol.md).
type Login struct {
	KeyID     [16]byte
	Timestamp int64
	Nonce     [16]byte
	NextSeq   uint64
	Flags     uint8
	MAC       [32]byte
}

// Type implements Message.
func (*Login) Type() Type { return TLogin }

// AppendFrame appends m's frame to dst.
func (m *Login) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TLogin]))
	b := dst[n:]
	putHeader(b, TLogin)
	copy(b[4:20], m.KeyID[:])
	le.PutUint64(b[20:], uint64(m.Timestamp))
	copy(b[28:44], m.Nonce[:])
	le.PutUint64(b[44:], uint64(m.NextSeq))
	b[52] = byte(m.Flags)
	copy(b[56:88], m.MAC[:])
	return dst
}

// UnmarshalFrame decodes frame, exactly one Login frame, into m.
func (m *Login) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TLogin); err != nil {
		return err
	}
	copy(m.KeyID[:], b[4:20])
	m.Timestamp = int64(le.Uint64(b[20:]))
	copy(m.Nonce[:], b[28:44])
	m.NextSeq = uint64(le.Uint64(b[44:]))
	m.Flags = uint8(b[52])
	copy(m.MAC[:], b[56:88])
	return nil
}

// LogoutRequest asks the server to end the session (type TLogoutRequest, docs/protocol.md).
type LogoutRequest struct {
}

// Type implements Message.
func (*LogoutRequest) Type() Type { return TLogoutRequest }

// AppendFrame appends m's frame to dst.
func (m *LogoutRequest) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TLogoutRequest]))
	b := dst[n:]
	putHeader(b, TLogoutRequest)
	return dst
}

// UnmarshalFrame decodes frame, exactly one LogoutRequest frame, into m.
func (m *LogoutRequest) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TLogoutRequest); err != nil {
		return err
	}
	*m = LogoutRequest{}
	return nil
}

// Heartbeat is sent by either side after a heartbeat interval of silence (type THeartbeat, docs/protocol.md).
type Heartbeat struct {
}

// Type implements Message.
func (*Heartbeat) Type() Type { return THeartbeat }

// AppendFrame appends m's frame to dst.
func (m *Heartbeat) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[THeartbeat]))
	b := dst[n:]
	putHeader(b, THeartbeat)
	return dst
}

// UnmarshalFrame decodes frame, exactly one Heartbeat frame, into m.
func (m *Heartbeat) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, THeartbeat); err != nil {
		return err
	}
	*m = Heartbeat{}
	return nil
}

// NewOrder enters an order for the session's account (type TNewOrder, docs/protocol.md).
type NewOrder struct {
	ClOrdID    uint64
	Instrument uint32
	Side       core.Side
	OrdType    core.OrderType
	TIF        core.TIF
	Flags      core.Flags
	STP        core.STPMode
	STPGroup   uint32
	Price      int64
	StopPrice  int64
	Qty        int64
	DisplayQty int64
	MinQty     int64
}

// Type implements Message.
func (*NewOrder) Type() Type { return TNewOrder }

// AppendFrame appends m's frame to dst.
func (m *NewOrder) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TNewOrder]))
	b := dst[n:]
	putHeader(b, TNewOrder)
	le.PutUint64(b[4:], uint64(m.ClOrdID))
	le.PutUint32(b[12:], uint32(m.Instrument))
	b[16] = byte(m.Side)
	b[17] = byte(m.OrdType)
	b[18] = byte(m.TIF)
	b[19] = byte(m.Flags)
	b[20] = byte(m.STP)
	le.PutUint32(b[24:], uint32(m.STPGroup))
	le.PutUint64(b[32:], uint64(m.Price))
	le.PutUint64(b[40:], uint64(m.StopPrice))
	le.PutUint64(b[48:], uint64(m.Qty))
	le.PutUint64(b[56:], uint64(m.DisplayQty))
	le.PutUint64(b[64:], uint64(m.MinQty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one NewOrder frame, into m.
func (m *NewOrder) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TNewOrder); err != nil {
		return err
	}
	m.ClOrdID = uint64(le.Uint64(b[4:]))
	m.Instrument = uint32(le.Uint32(b[12:]))
	m.Side = core.Side(b[16])
	m.OrdType = core.OrderType(b[17])
	m.TIF = core.TIF(b[18])
	m.Flags = core.Flags(b[19])
	m.STP = core.STPMode(b[20])
	m.STPGroup = uint32(le.Uint32(b[24:]))
	m.Price = int64(le.Uint64(b[32:]))
	m.StopPrice = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	m.DisplayQty = int64(le.Uint64(b[56:]))
	m.MinQty = int64(le.Uint64(b[64:]))
	return nil
}

// Cancel cancels an open order (type TCancel, docs/protocol.md).
type Cancel struct {
	OrderID     uint64
	OrigClOrdID uint64
	Instrument  uint32
}

// Type implements Message.
func (*Cancel) Type() Type { return TCancel }

// AppendFrame appends m's frame to dst.
func (m *Cancel) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TCancel]))
	b := dst[n:]
	putHeader(b, TCancel)
	le.PutUint64(b[4:], uint64(m.OrderID))
	le.PutUint64(b[12:], uint64(m.OrigClOrdID))
	le.PutUint32(b[20:], uint32(m.Instrument))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Cancel frame, into m.
func (m *Cancel) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TCancel); err != nil {
		return err
	}
	m.OrderID = uint64(le.Uint64(b[4:]))
	m.OrigClOrdID = uint64(le.Uint64(b[12:]))
	m.Instrument = uint32(le.Uint32(b[20:]))
	return nil
}

// CancelToSize reduces an open order to Qty lots, keeping its priority (type TCancelToSize, docs/protocol.md).
type CancelToSize struct {
	OrderID     uint64
	OrigClOrdID uint64
	Instrument  uint32
	Qty         int64
}

// Type implements Message.
func (*CancelToSize) Type() Type { return TCancelToSize }

// AppendFrame appends m's frame to dst.
func (m *CancelToSize) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TCancelToSize]))
	b := dst[n:]
	putHeader(b, TCancelToSize)
	le.PutUint64(b[4:], uint64(m.OrderID))
	le.PutUint64(b[12:], uint64(m.OrigClOrdID))
	le.PutUint32(b[20:], uint32(m.Instrument))
	le.PutUint64(b[24:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one CancelToSize frame, into m.
func (m *CancelToSize) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TCancelToSize); err != nil {
		return err
	}
	m.OrderID = uint64(le.Uint64(b[4:]))
	m.OrigClOrdID = uint64(le.Uint64(b[12:]))
	m.Instrument = uint32(le.Uint32(b[20:]))
	m.Qty = int64(le.Uint64(b[24:]))
	return nil
}

// Replace replaces an open order's price and quantity under a new reference (type TReplace, docs/protocol.md).
type Replace struct {
	OrderID     uint64
	OrigClOrdID uint64
	ClOrdID     uint64
	Instrument  uint32
	Price       int64
	StopPrice   int64
	Qty         int64
}

// Type implements Message.
func (*Replace) Type() Type { return TReplace }

// AppendFrame appends m's frame to dst.
func (m *Replace) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TReplace]))
	b := dst[n:]
	putHeader(b, TReplace)
	le.PutUint64(b[4:], uint64(m.OrderID))
	le.PutUint64(b[12:], uint64(m.OrigClOrdID))
	le.PutUint64(b[20:], uint64(m.ClOrdID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.Price))
	le.PutUint64(b[40:], uint64(m.StopPrice))
	le.PutUint64(b[48:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Replace frame, into m.
func (m *Replace) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TReplace); err != nil {
		return err
	}
	m.OrderID = uint64(le.Uint64(b[4:]))
	m.OrigClOrdID = uint64(le.Uint64(b[12:]))
	m.ClOrdID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Price = int64(le.Uint64(b[32:]))
	m.StopPrice = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	return nil
}

// MassCancel cancels every open order of the account in Instrument (0: all) (type TMassCancel, docs/protocol.md).
type MassCancel struct {
	Instrument uint32
}

// Type implements Message.
func (*MassCancel) Type() Type { return TMassCancel }

// AppendFrame appends m's frame to dst.
func (m *MassCancel) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMassCancel]))
	b := dst[n:]
	putHeader(b, TMassCancel)
	le.PutUint32(b[4:], uint32(m.Instrument))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MassCancel frame, into m.
func (m *MassCancel) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMassCancel); err != nil {
		return err
	}
	m.Instrument = uint32(le.Uint32(b[4:]))
	return nil
}

// KillSwitch sets the account's kill switch (type TKillSwitch, docs/protocol.md).
type KillSwitch struct {
}

// Type implements Message.
func (*KillSwitch) Type() Type { return TKillSwitch }

// AppendFrame appends m's frame to dst.
func (m *KillSwitch) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TKillSwitch]))
	b := dst[n:]
	putHeader(b, TKillSwitch)
	return dst
}

// UnmarshalFrame decodes frame, exactly one KillSwitch frame, into m.
func (m *KillSwitch) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TKillSwitch); err != nil {
		return err
	}
	*m = KillSwitch{}
	return nil
}

// ReferenceQuery asks for NextReference (type TReferenceQuery, docs/protocol.md).
type ReferenceQuery struct {
}

// Type implements Message.
func (*ReferenceQuery) Type() Type { return TReferenceQuery }

// AppendFrame appends m's frame to dst.
func (m *ReferenceQuery) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TReferenceQuery]))
	b := dst[n:]
	putHeader(b, TReferenceQuery)
	return dst
}

// UnmarshalFrame decodes frame, exactly one ReferenceQuery frame, into m.
func (m *ReferenceQuery) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TReferenceQuery); err != nil {
		return err
	}
	*m = ReferenceQuery{}
	return nil
}

// LoginAccepted answers a valid login (type TLoginAccepted, docs/protocol.md).
type LoginAccepted struct {
	SessionID   uint64
	NextSeq     uint64
	ReplayFrom  uint64
	NextClOrdID uint64
	Account     uint32
	HeartbeatMs uint32
	ServerTime  int64
}

// Type implements Message.
func (*LoginAccepted) Type() Type { return TLoginAccepted }

// AppendFrame appends m's frame to dst.
func (m *LoginAccepted) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TLoginAccepted]))
	b := dst[n:]
	putHeader(b, TLoginAccepted)
	le.PutUint64(b[4:], uint64(m.SessionID))
	le.PutUint64(b[12:], uint64(m.NextSeq))
	le.PutUint64(b[20:], uint64(m.ReplayFrom))
	le.PutUint64(b[28:], uint64(m.NextClOrdID))
	le.PutUint32(b[36:], uint32(m.Account))
	le.PutUint32(b[40:], uint32(m.HeartbeatMs))
	le.PutUint64(b[44:], uint64(m.ServerTime))
	return dst
}

// UnmarshalFrame decodes frame, exactly one LoginAccepted frame, into m.
func (m *LoginAccepted) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TLoginAccepted); err != nil {
		return err
	}
	m.SessionID = uint64(le.Uint64(b[4:]))
	m.NextSeq = uint64(le.Uint64(b[12:]))
	m.ReplayFrom = uint64(le.Uint64(b[20:]))
	m.NextClOrdID = uint64(le.Uint64(b[28:]))
	m.Account = uint32(le.Uint32(b[36:]))
	m.HeartbeatMs = uint32(le.Uint32(b[40:]))
	m.ServerTime = int64(le.Uint64(b[44:]))
	return nil
}

// LoginRejected answers a refused login; the server then closes (type TLoginRejected, docs/protocol.md).
type LoginRejected struct {
	Reason core.Reason
}

// Type implements Message.
func (*LoginRejected) Type() Type { return TLoginRejected }

// AppendFrame appends m's frame to dst.
func (m *LoginRejected) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TLoginRejected]))
	b := dst[n:]
	putHeader(b, TLoginRejected)
	le.PutUint16(b[4:], uint16(m.Reason))
	return dst
}

// UnmarshalFrame decodes frame, exactly one LoginRejected frame, into m.
func (m *LoginRejected) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TLoginRejected); err != nil {
		return err
	}
	m.Reason = core.Reason(le.Uint16(b[4:]))
	return nil
}

// Logout tells the client the server ends the session (type TLogout, docs/protocol.md).
type Logout struct {
	Reason  core.Reason
	NextSeq uint64
}

// Type implements Message.
func (*Logout) Type() Type { return TLogout }

// AppendFrame appends m's frame to dst.
func (m *Logout) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TLogout]))
	b := dst[n:]
	putHeader(b, TLogout)
	le.PutUint16(b[4:], uint16(m.Reason))
	le.PutUint64(b[8:], uint64(m.NextSeq))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Logout frame, into m.
func (m *Logout) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TLogout); err != nil {
		return err
	}
	m.Reason = core.Reason(le.Uint16(b[4:]))
	m.NextSeq = uint64(le.Uint64(b[8:]))
	return nil
}

// SessionReject says the gateway refused a message before it reached the engine; it is unsequenced (type TSessionReject, docs/protocol.md).
type SessionReject struct {
	Reason  core.Reason
	MsgType Type
	ClOrdID uint64
	OrderID uint64
}

// Type implements Message.
func (*SessionReject) Type() Type { return TSessionReject }

// AppendFrame appends m's frame to dst.
func (m *SessionReject) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TSessionReject]))
	b := dst[n:]
	putHeader(b, TSessionReject)
	le.PutUint16(b[4:], uint16(m.Reason))
	b[6] = byte(m.MsgType)
	le.PutUint64(b[8:], uint64(m.ClOrdID))
	le.PutUint64(b[16:], uint64(m.OrderID))
	return dst
}

// UnmarshalFrame decodes frame, exactly one SessionReject frame, into m.
func (m *SessionReject) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TSessionReject); err != nil {
		return err
	}
	m.Reason = core.Reason(le.Uint16(b[4:]))
	m.MsgType = Type(b[6])
	m.ClOrdID = uint64(le.Uint64(b[8:]))
	m.OrderID = uint64(le.Uint64(b[16:]))
	return nil
}

// NextReference answers ReferenceQuery (type TNextReference, docs/protocol.md).
type NextReference struct {
	NextClOrdID uint64
	Account     uint32
}

// Type implements Message.
func (*NextReference) Type() Type { return TNextReference }

// AppendFrame appends m's frame to dst.
func (m *NextReference) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TNextReference]))
	b := dst[n:]
	putHeader(b, TNextReference)
	le.PutUint64(b[4:], uint64(m.NextClOrdID))
	le.PutUint32(b[12:], uint32(m.Account))
	return dst
}

// UnmarshalFrame decodes frame, exactly one NextReference frame, into m.
func (m *NextReference) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TNextReference); err != nil {
		return err
	}
	m.NextClOrdID = uint64(le.Uint64(b[4:]))
	m.Account = uint32(le.Uint32(b[12:]))
	return nil
}

// Accepted says the order is live (type TAccepted, docs/protocol.md).
type Accepted struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	ClOrdID    uint64
	Instrument uint32
	Side       core.Side
	OrdType    core.OrderType
	TIF        core.TIF
	Price      int64
	StopPrice  int64
	Qty        int64
}

// Type implements Message.
func (*Accepted) Type() Type { return TAccepted }

// AppendFrame appends m's frame to dst.
func (m *Accepted) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAccepted]))
	b := dst[n:]
	putHeader(b, TAccepted)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint64(b[28:], uint64(m.ClOrdID))
	le.PutUint32(b[36:], uint32(m.Instrument))
	b[40] = byte(m.Side)
	b[41] = byte(m.OrdType)
	b[42] = byte(m.TIF)
	le.PutUint64(b[48:], uint64(m.Price))
	le.PutUint64(b[56:], uint64(m.StopPrice))
	le.PutUint64(b[64:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Accepted frame, into m.
func (m *Accepted) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAccepted); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.ClOrdID = uint64(le.Uint64(b[28:]))
	m.Instrument = uint32(le.Uint32(b[36:]))
	m.Side = core.Side(b[40])
	m.OrdType = core.OrderType(b[41])
	m.TIF = core.TIF(b[42])
	m.Price = int64(le.Uint64(b[48:]))
	m.StopPrice = int64(le.Uint64(b[56:]))
	m.Qty = int64(le.Uint64(b[64:]))
	return nil
}

// Rejected says the engine refused a command (type TRejected, docs/protocol.md).
type Rejected struct {
	Seq         uint64
	Time        int64
	Reason      core.Reason
	Side        core.Side
	OrdType     core.OrderType
	TIF         core.TIF
	Instrument  uint32
	OrderID     uint64
	ClOrdID     uint64
	OrigClOrdID uint64
	Price       int64
	StopPrice   int64
	Qty         int64
}

// Type implements Message.
func (*Rejected) Type() Type { return TRejected }

// AppendFrame appends m's frame to dst.
func (m *Rejected) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TRejected]))
	b := dst[n:]
	putHeader(b, TRejected)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	b[22] = byte(m.Side)
	b[23] = byte(m.OrdType)
	b[24] = byte(m.TIF)
	le.PutUint32(b[28:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.OrderID))
	le.PutUint64(b[40:], uint64(m.ClOrdID))
	le.PutUint64(b[48:], uint64(m.OrigClOrdID))
	le.PutUint64(b[56:], uint64(m.Price))
	le.PutUint64(b[64:], uint64(m.StopPrice))
	le.PutUint64(b[72:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Rejected frame, into m.
func (m *Rejected) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TRejected); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Side = core.Side(b[22])
	m.OrdType = core.OrderType(b[23])
	m.TIF = core.TIF(b[24])
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.OrderID = uint64(le.Uint64(b[32:]))
	m.ClOrdID = uint64(le.Uint64(b[40:]))
	m.OrigClOrdID = uint64(le.Uint64(b[48:]))
	m.Price = int64(le.Uint64(b[56:]))
	m.StopPrice = int64(le.Uint64(b[64:]))
	m.Qty = int64(le.Uint64(b[72:]))
	return nil
}

// Executed reports one fill of one of the account's orders (type TExecuted, docs/protocol.md).
type Executed struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	ClOrdID    uint64
	Instrument uint32
	Side       core.Side
	Liquidity  uint8
	MatchID    uint64
	Price      int64
	Qty        int64
	Leaves     int64
}

// Type implements Message.
func (*Executed) Type() Type { return TExecuted }

// AppendFrame appends m's frame to dst.
func (m *Executed) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TExecuted]))
	b := dst[n:]
	putHeader(b, TExecuted)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint64(b[28:], uint64(m.ClOrdID))
	le.PutUint32(b[36:], uint32(m.Instrument))
	b[40] = byte(m.Side)
	b[41] = byte(m.Liquidity)
	le.PutUint64(b[48:], uint64(m.MatchID))
	le.PutUint64(b[56:], uint64(m.Price))
	le.PutUint64(b[64:], uint64(m.Qty))
	le.PutUint64(b[72:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Executed frame, into m.
func (m *Executed) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TExecuted); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.ClOrdID = uint64(le.Uint64(b[28:]))
	m.Instrument = uint32(le.Uint32(b[36:]))
	m.Side = core.Side(b[40])
	m.Liquidity = uint8(b[41])
	m.MatchID = uint64(le.Uint64(b[48:]))
	m.Price = int64(le.Uint64(b[56:]))
	m.Qty = int64(le.Uint64(b[64:]))
	m.Leaves = int64(le.Uint64(b[72:]))
	return nil
}

// Cancelled says the order is gone (type TCancelled, docs/protocol.md).
type Cancelled struct {
	Seq        uint64
	Time       int64
	Reason     core.Reason
	Side       core.Side
	Instrument uint32
	OrderID    uint64
	ClOrdID    uint64
	Qty        int64
	Leaves     int64
}

// Type implements Message.
func (*Cancelled) Type() Type { return TCancelled }

// AppendFrame appends m's frame to dst.
func (m *Cancelled) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TCancelled]))
	b := dst[n:]
	putHeader(b, TCancelled)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	b[22] = byte(m.Side)
	le.PutUint32(b[24:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.OrderID))
	le.PutUint64(b[40:], uint64(m.ClOrdID))
	le.PutUint64(b[48:], uint64(m.Qty))
	le.PutUint64(b[56:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Cancelled frame, into m.
func (m *Cancelled) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TCancelled); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Side = core.Side(b[22])
	m.Instrument = uint32(le.Uint32(b[24:]))
	m.OrderID = uint64(le.Uint64(b[32:]))
	m.ClOrdID = uint64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	m.Leaves = int64(le.Uint64(b[56:]))
	return nil
}

// Reduced says the order's open quantity fell, keeping its priority (type TReduced, docs/protocol.md).
type Reduced struct {
	Seq        uint64
	Time       int64
	Reason     core.Reason
	Side       core.Side
	Instrument uint32
	OrderID    uint64
	ClOrdID    uint64
	Qty        int64
	Leaves     int64
}

// Type implements Message.
func (*Reduced) Type() Type { return TReduced }

// AppendFrame appends m's frame to dst.
func (m *Reduced) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TReduced]))
	b := dst[n:]
	putHeader(b, TReduced)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	b[22] = byte(m.Side)
	le.PutUint32(b[24:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.OrderID))
	le.PutUint64(b[40:], uint64(m.ClOrdID))
	le.PutUint64(b[48:], uint64(m.Qty))
	le.PutUint64(b[56:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Reduced frame, into m.
func (m *Reduced) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TReduced); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Side = core.Side(b[22])
	m.Instrument = uint32(le.Uint32(b[24:]))
	m.OrderID = uint64(le.Uint64(b[32:]))
	m.ClOrdID = uint64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	m.Leaves = int64(le.Uint64(b[56:]))
	return nil
}

// Replaced says the order now has a new reference, price and quantity (type TReplaced, docs/protocol.md).
type Replaced struct {
	Seq         uint64
	Time        int64
	OrderID     uint64
	ClOrdID     uint64
	OrigClOrdID uint64
	Instrument  uint32
	Side        core.Side
	Price       int64
	StopPrice   int64
	Leaves      int64
}

// Type implements Message.
func (*Replaced) Type() Type { return TReplaced }

// AppendFrame appends m's frame to dst.
func (m *Replaced) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TReplaced]))
	b := dst[n:]
	putHeader(b, TReplaced)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint64(b[28:], uint64(m.ClOrdID))
	le.PutUint64(b[36:], uint64(m.OrigClOrdID))
	le.PutUint32(b[44:], uint32(m.Instrument))
	b[48] = byte(m.Side)
	le.PutUint64(b[56:], uint64(m.Price))
	le.PutUint64(b[64:], uint64(m.StopPrice))
	le.PutUint64(b[72:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Replaced frame, into m.
func (m *Replaced) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TReplaced); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.ClOrdID = uint64(le.Uint64(b[28:]))
	m.OrigClOrdID = uint64(le.Uint64(b[36:]))
	m.Instrument = uint32(le.Uint32(b[44:]))
	m.Side = core.Side(b[48])
	m.Price = int64(le.Uint64(b[56:]))
	m.StopPrice = int64(le.Uint64(b[64:]))
	m.Leaves = int64(le.Uint64(b[72:]))
	return nil
}

// Triggered says a stop order's trigger was reached (type TTriggered, docs/protocol.md).
type Triggered struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	ClOrdID    uint64
	Instrument uint32
	Side       core.Side
	OrdType    core.OrderType
	TIF        core.TIF
	Price      int64
	StopPrice  int64
	Leaves     int64
}

// Type implements Message.
func (*Triggered) Type() Type { return TTriggered }

// AppendFrame appends m's frame to dst.
func (m *Triggered) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TTriggered]))
	b := dst[n:]
	putHeader(b, TTriggered)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint64(b[28:], uint64(m.ClOrdID))
	le.PutUint32(b[36:], uint32(m.Instrument))
	b[40] = byte(m.Side)
	b[41] = byte(m.OrdType)
	b[42] = byte(m.TIF)
	le.PutUint64(b[48:], uint64(m.Price))
	le.PutUint64(b[56:], uint64(m.StopPrice))
	le.PutUint64(b[64:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one Triggered frame, into m.
func (m *Triggered) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TTriggered); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.ClOrdID = uint64(le.Uint64(b[28:]))
	m.Instrument = uint32(le.Uint32(b[36:]))
	m.Side = core.Side(b[40])
	m.OrdType = core.OrderType(b[41])
	m.TIF = core.TIF(b[42])
	m.Price = int64(le.Uint64(b[48:]))
	m.StopPrice = int64(le.Uint64(b[56:]))
	m.Leaves = int64(le.Uint64(b[64:]))
	return nil
}

// SystemEvent says an instrument or the market halted or resumed (type TSystemEvent, docs/protocol.md).
type SystemEvent struct {
	Seq        uint64
	Time       int64
	Reason     core.Reason
	Instrument uint32
	Qty        int64
}

// Type implements Message.
func (*SystemEvent) Type() Type { return TSystemEvent }

// AppendFrame appends m's frame to dst.
func (m *SystemEvent) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TSystemEvent]))
	b := dst[n:]
	putHeader(b, TSystemEvent)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	le.PutUint32(b[24:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one SystemEvent frame, into m.
func (m *SystemEvent) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TSystemEvent); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Instrument = uint32(le.Uint32(b[24:]))
	m.Qty = int64(le.Uint64(b[32:]))
	return nil
}

// AccountAlert says an admin action on the account took effect (type TAccountAlert, docs/protocol.md).
type AccountAlert struct {
	Seq        uint64
	Time       int64
	Reason     core.Reason
	Instrument uint32
	Account    uint32
	Value      int64
	LimitID    uint64
}

// Type implements Message.
func (*AccountAlert) Type() Type { return TAccountAlert }

// AppendFrame appends m's frame to dst.
func (m *AccountAlert) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAccountAlert]))
	b := dst[n:]
	putHeader(b, TAccountAlert)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	le.PutUint32(b[24:], uint32(m.Instrument))
	le.PutUint32(b[28:], uint32(m.Account))
	le.PutUint64(b[32:], uint64(m.Value))
	le.PutUint64(b[40:], uint64(m.LimitID))
	return dst
}

// UnmarshalFrame decodes frame, exactly one AccountAlert frame, into m.
func (m *AccountAlert) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAccountAlert); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Instrument = uint32(le.Uint32(b[24:]))
	m.Account = uint32(le.Uint32(b[28:]))
	m.Value = int64(le.Uint64(b[32:]))
	m.LimitID = uint64(le.Uint64(b[40:]))
	return nil
}

// MDAdd says an order shows Qty lots at Price (type TMDAdd, docs/protocol.md).
type MDAdd struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	Instrument uint32
	Side       core.Side
	Price      int64
	Qty        int64
}

// Type implements Message.
func (*MDAdd) Type() Type { return TMDAdd }

// AppendFrame appends m's frame to dst.
func (m *MDAdd) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDAdd]))
	b := dst[n:]
	putHeader(b, TMDAdd)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	le.PutUint64(b[40:], uint64(m.Price))
	le.PutUint64(b[48:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDAdd frame, into m.
func (m *MDAdd) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDAdd); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	m.Price = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	return nil
}

// MDExecute says a shown order executed (type TMDExecute, docs/protocol.md).
type MDExecute struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	Instrument uint32
	Side       core.Side
	Price      int64
	Qty        int64
	Leaves     int64
	MatchID    uint64
}

// Type implements Message.
func (*MDExecute) Type() Type { return TMDExecute }

// AppendFrame appends m's frame to dst.
func (m *MDExecute) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDExecute]))
	b := dst[n:]
	putHeader(b, TMDExecute)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	le.PutUint64(b[40:], uint64(m.Price))
	le.PutUint64(b[48:], uint64(m.Qty))
	le.PutUint64(b[56:], uint64(m.Leaves))
	le.PutUint64(b[64:], uint64(m.MatchID))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDExecute frame, into m.
func (m *MDExecute) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDExecute); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	m.Price = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	m.Leaves = int64(le.Uint64(b[56:]))
	m.MatchID = uint64(le.Uint64(b[64:]))
	return nil
}

// MDCancel says a shown order was reduced, keeping its place (type TMDCancel, docs/protocol.md).
type MDCancel struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	Instrument uint32
	Side       core.Side
	Qty        int64
	Leaves     int64
}

// Type implements Message.
func (*MDCancel) Type() Type { return TMDCancel }

// AppendFrame appends m's frame to dst.
func (m *MDCancel) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDCancel]))
	b := dst[n:]
	putHeader(b, TMDCancel)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	le.PutUint64(b[40:], uint64(m.Qty))
	le.PutUint64(b[48:], uint64(m.Leaves))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDCancel frame, into m.
func (m *MDCancel) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDCancel); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	m.Qty = int64(le.Uint64(b[40:]))
	m.Leaves = int64(le.Uint64(b[48:]))
	return nil
}

// MDDelete says a shown order left the book (type TMDDelete, docs/protocol.md).
type MDDelete struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	Instrument uint32
	Side       core.Side
}

// Type implements Message.
func (*MDDelete) Type() Type { return TMDDelete }

// AppendFrame appends m's frame to dst.
func (m *MDDelete) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDDelete]))
	b := dst[n:]
	putHeader(b, TMDDelete)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDDelete frame, into m.
func (m *MDDelete) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDDelete); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	return nil
}

// MDReplace says a shown order moved to Price with Qty shown, at the back of its level (type TMDReplace, docs/protocol.md).
type MDReplace struct {
	Seq        uint64
	Time       int64
	OrderID    uint64
	Instrument uint32
	Side       core.Side
	Price      int64
	Qty        int64
}

// Type implements Message.
func (*MDReplace) Type() Type { return TMDReplace }

// AppendFrame appends m's frame to dst.
func (m *MDReplace) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDReplace]))
	b := dst[n:]
	putHeader(b, TMDReplace)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.OrderID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	le.PutUint64(b[40:], uint64(m.Price))
	le.PutUint64(b[48:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDReplace frame, into m.
func (m *MDReplace) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDReplace); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.OrderID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	m.Price = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	return nil
}

// MDTrade is a trade print (type TMDTrade, docs/protocol.md).
type MDTrade struct {
	Seq        uint64
	Time       int64
	MatchID    uint64
	Instrument uint32
	Side       core.Side
	Price      int64
	Qty        int64
}

// Type implements Message.
func (*MDTrade) Type() Type { return TMDTrade }

// AppendFrame appends m's frame to dst.
func (m *MDTrade) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDTrade]))
	b := dst[n:]
	putHeader(b, TMDTrade)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint64(b[20:], uint64(m.MatchID))
	le.PutUint32(b[28:], uint32(m.Instrument))
	b[32] = byte(m.Side)
	le.PutUint64(b[40:], uint64(m.Price))
	le.PutUint64(b[48:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDTrade frame, into m.
func (m *MDTrade) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDTrade); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.MatchID = uint64(le.Uint64(b[20:]))
	m.Instrument = uint32(le.Uint32(b[28:]))
	m.Side = core.Side(b[32])
	m.Price = int64(le.Uint64(b[40:]))
	m.Qty = int64(le.Uint64(b[48:]))
	return nil
}

// MDSystem says an instrument or the market halted or resumed (type TMDSystem, docs/protocol.md).
type MDSystem struct {
	Seq        uint64
	Time       int64
	Reason     core.Reason
	Instrument uint32
	Qty        int64
}

// Type implements Message.
func (*MDSystem) Type() Type { return TMDSystem }

// AppendFrame appends m's frame to dst.
func (m *MDSystem) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TMDSystem]))
	b := dst[n:]
	putHeader(b, TMDSystem)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Time))
	le.PutUint16(b[20:], uint16(m.Reason))
	le.PutUint32(b[24:], uint32(m.Instrument))
	le.PutUint64(b[32:], uint64(m.Qty))
	return dst
}

// UnmarshalFrame decodes frame, exactly one MDSystem frame, into m.
func (m *MDSystem) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TMDSystem); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Time = int64(le.Uint64(b[12:]))
	m.Reason = core.Reason(le.Uint16(b[20:]))
	m.Instrument = uint32(le.Uint32(b[24:]))
	m.Qty = int64(le.Uint64(b[32:]))
	return nil
}

// SnapshotBegin opens a market-data snapshot (type TSnapshotBegin, docs/protocol.md).
type SnapshotBegin struct {
	Seq    uint64
	Orders uint64
}

// Type implements Message.
func (*SnapshotBegin) Type() Type { return TSnapshotBegin }

// AppendFrame appends m's frame to dst.
func (m *SnapshotBegin) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TSnapshotBegin]))
	b := dst[n:]
	putHeader(b, TSnapshotBegin)
	le.PutUint64(b[4:], uint64(m.Seq))
	le.PutUint64(b[12:], uint64(m.Orders))
	return dst
}

// UnmarshalFrame decodes frame, exactly one SnapshotBegin frame, into m.
func (m *SnapshotBegin) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TSnapshotBegin); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	m.Orders = uint64(le.Uint64(b[12:]))
	return nil
}

// SnapshotEnd closes a market-data snapshot (type TSnapshotEnd, docs/protocol.md).
type SnapshotEnd struct {
	Seq uint64
}

// Type implements Message.
func (*SnapshotEnd) Type() Type { return TSnapshotEnd }

// AppendFrame appends m's frame to dst.
func (m *SnapshotEnd) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TSnapshotEnd]))
	b := dst[n:]
	putHeader(b, TSnapshotEnd)
	le.PutUint64(b[4:], uint64(m.Seq))
	return dst
}

// UnmarshalFrame decodes frame, exactly one SnapshotEnd frame, into m.
func (m *SnapshotEnd) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TSnapshotEnd); err != nil {
		return err
	}
	m.Seq = uint64(le.Uint64(b[4:]))
	return nil
}

// newMessage returns a new zero message of type t, or nil.
func newMessage(t Type) Message {
	switch t {
	case TLogin:
		return new(Login)
	case TLogoutRequest:
		return new(LogoutRequest)
	case THeartbeat:
		return new(Heartbeat)
	case TNewOrder:
		return new(NewOrder)
	case TCancel:
		return new(Cancel)
	case TCancelToSize:
		return new(CancelToSize)
	case TReplace:
		return new(Replace)
	case TMassCancel:
		return new(MassCancel)
	case TKillSwitch:
		return new(KillSwitch)
	case TReferenceQuery:
		return new(ReferenceQuery)
	case TLoginAccepted:
		return new(LoginAccepted)
	case TLoginRejected:
		return new(LoginRejected)
	case TLogout:
		return new(Logout)
	case TSessionReject:
		return new(SessionReject)
	case TNextReference:
		return new(NextReference)
	case TAccepted:
		return new(Accepted)
	case TRejected:
		return new(Rejected)
	case TExecuted:
		return new(Executed)
	case TCancelled:
		return new(Cancelled)
	case TReduced:
		return new(Reduced)
	case TReplaced:
		return new(Replaced)
	case TTriggered:
		return new(Triggered)
	case TSystemEvent:
		return new(SystemEvent)
	case TAccountAlert:
		return new(AccountAlert)
	case TMDAdd:
		return new(MDAdd)
	case TMDExecute:
		return new(MDExecute)
	case TMDCancel:
		return new(MDCancel)
	case TMDDelete:
		return new(MDDelete)
	case TMDReplace:
		return new(MDReplace)
	case TMDTrade:
		return new(MDTrade)
	case TMDSystem:
		return new(MDSystem)
	case TSnapshotBegin:
		return new(SnapshotBegin)
	case TSnapshotEnd:
		return new(SnapshotEnd)
	case TAttestHello:
		return new(AttestHello)
	case TAttestChallenge:
		return new(AttestChallenge)
	case TAttestQuote:
		return new(AttestQuote)
	case TAttestAccepted:
		return new(AttestAccepted)
	}
	return nil
}
