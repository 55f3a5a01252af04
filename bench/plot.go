package bench

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Series is one latency distribution of a plot.
type Series struct {
	Name string
	H    *hdrhistogram.Histogram
}

// WriteSVG draws the series' percentile curves (HdrHistogram style: the
// x axis runs 0, 90, 99, 99.9, 99.99 %, the y axis is latency in µs, both
// logarithmic) as a self-contained SVG.
func WriteSVG(w io.Writer, title string, series []Series) error {
	const W, H, L, R, T, B = 760.0, 420.0, 70.0, 160.0, 40.0, 50.0
	pw, ph := W-L-R, H-T-B
	// x: log10(1/(1-p)), p up to 99.999%.
	xmax := 5.0
	ymin, ymax := math.Inf(1), math.Inf(-1)
	type pt struct{ x, y float64 }
	curves := make([][]pt, len(series))
	for i, s := range series {
		if s.H == nil || s.H.TotalCount() == 0 {
			continue
		}
		for k := 0; k <= 100; k++ {
			x := xmax * float64(k) / 100
			p := 100 * (1 - math.Pow(10, -x))
			v := float64(s.H.ValueAtQuantile(p)) / 1e3
			if v <= 0 {
				v = 0.001
			}
			curves[i] = append(curves[i], pt{x, v})
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 1, 10
	}
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if hi <= lo {
		hi = lo + 1
	}
	X := func(x float64) float64 { return L + pw*x/xmax }
	Y := func(v float64) float64 { return T + ph*(1-(math.Log10(v)-lo)/(hi-lo)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="24" font-size="14">%s</text>`+"\n", L, escape(title))
	for d := lo; d <= hi; d++ {
		y := Y(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g µs</text>`+"\n", L, L+pw, y, y, L-6, y+4, math.Pow(10, d))
	}
	for i, lab := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		x := X(float64(i))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, x, T, T+ph, x, T+ph+18, lab)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile</text>`+"\n", L+pw/2, H-8)
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
	for i, c := range curves {
		if len(c) == 0 {
			continue
		}
		col := colors[i%len(colors)]
		var pts []string
		for _, p := range c {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(p.y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		ly := T + 16*float64(i)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			L+pw+10, L+pw+30, ly, ly, col, L+pw+36, ly+4, escape(series[i].Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
