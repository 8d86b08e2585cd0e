// The portfolio-value chart (uPlot, drawn on a canvas). The chart needs numbers to place points, so
// values are converted for drawing only; every figure shown as text stays the API's decimal string.
import { html, useEffect, useRef } from "../vendor/htm-preact-standalone.js";
import uPlot from "../vendor/uPlot.esm.js";

const HEIGHT = 220;

function columns(points) {
  return [points.map((p) => p.at / 1000), points.map((p) => Number(p.value))];
}

export function ValueChart({ points }) {
  const box = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const width = () => Math.max(240, box.current.clientWidth);
    plot.current = new uPlot(
      {
        width: width(),
        height: HEIGHT,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true } },
        series: [{}, { label: "Total value (USD)", stroke: "#0b5cad", width: 2, fill: "rgba(11,92,173,0.08)" }],
        axes: [{}, { size: 70 }],
      },
      columns(points),
      box.current,
    );
    const resize = new ResizeObserver(() => plot.current.setSize({ width: width(), height: HEIGHT }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.current.destroy();
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(columns(points));
  }, [points]);

  const last = points[points.length - 1];
  return html`
    <figure class="chart">
      <div ref=${box} role="img" aria-label=${`Portfolio value over time, ${points.length} points, latest ${last ? last.value : "none"} USD`}></div>
      <figcaption>Total value since this tab signed in, recorded by the browser each time it reads the portfolio.</figcaption>
    </figure>`;
}
