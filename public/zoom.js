// Pinch to zoom in pan mode. noVNC turns a two-finger pinch on the remote screen into Ctrl+wheel
// sent to the machine; in pan mode the page takes noVNC's touch gestures (pinch, two-finger drag,
// one-finger drag) before noVNC sees them and zooms and moves the picture locally, between "fit"
// and 3×, the point under the fingers staying under the fingers. Nothing of these gestures is sent
// to the machine (no pointer, no wheel, no key). Taps and long presses stay noVNC's (a click on
// the machine, at the right spot: noVNC maps the touch through the display's scale).

/** The largest zoom: three remote pixels per screen pixel. */
export const MAX_ZOOM = 3;

/**
 * noVNC's display of an RFB: the one internal this page uses, because noVNC has no public zoom
 * (only `scaleViewport`, which fits). Written for @novnc/novnc 1.7.0 (package-lock.json): its
 * `RFB._display` (core/display.js) with `scale`, `viewportChangeSize(w, h)` (the visible part of
 * the remote screen, in remote pixels), `viewportChangePos(dx, dy)` (clamped to the remote screen),
 * `absX(x)`/`absY(y)` (a canvas point in remote pixels) and `width`/`height` (the remote screen).
 * noVNC resets scale and viewport itself on every resize and view setting (back to 1:1); see
 * installPinchZoom for how a zoom outlives a resize.
 */
function displayOf(rfb) {
  const display = rfb?._display;
  return display && typeof display.viewportChangeSize === 'function' && display.clipViewport ? display : null;
}

/** The zoom range for a remote screen in a container: from "fit" (or 1:1 if smaller) to 3×. */
export function zoomRange(remote, box) {
  const fit = remote.width > 0 && remote.height > 0 ? Math.min(box.width / remote.width, box.height / remote.height) : 1;
  return { min: Math.min(1, fit), max: Math.max(MAX_ZOOM, fit) };
}

/** `value` kept inside [min, max]. */
export function clamp(value, { min, max }) {
  return Math.min(max, Math.max(min, value));
}

/** Shows the remote screen at `scale` in the canvas's container (noVNC's screen element). */
function zoomTo(display, canvas, scale) {
  const box = canvas.parentElement.getBoundingClientRect();
  display.scale = scale;
  display.viewportChangeSize(box.width / scale, box.height / scale);
}

/** Moves the picture so that remote point (rx, ry) is under page point (px, py). */
function placeAt(display, canvas, rx, ry, px, py) {
  const rect = canvas.getBoundingClientRect();
  const scale = display.scale;
  const dx = rx - (px - rect.left) / scale - display.absX(0);
  const dy = ry - (py - rect.top) / scale - display.absY(0);
  display.viewportChangePos(Math.round(dx), Math.round(dy));
}

/**
 * Takes noVNC's gesture events (pinch, twodrag, drag) on `container`'s remote screen while
 * `options.active()` (pan mode): a capturing listener on the container runs before noVNC's own on
 * its canvas and stops them there. `options.rfb()` is the current RFB (or null).
 */
export function installPinchZoom(container, options) {
  /** The gesture under way: its kind, the remote point it holds, where it began, scale and spread. */
  let gesture = null;

  function onGesture(e) {
    const detail = e.detail;
    const kind = detail?.type;
    if (kind !== 'pinch' && kind !== 'twodrag' && kind !== 'drag') return;
    if (!options.active()) return;
    const canvas = e.target;
    const display = displayOf(options.rfb());
    if (!display || !(canvas instanceof HTMLCanvasElement)) return;
    // noVNC's handler on the canvas never sees it: nothing of this gesture reaches the machine.
    e.stopPropagation();
    if (e.type === 'gesturestart') {
      const rect = canvas.getBoundingClientRect();
      const scale = display.scale || 1;
      gesture = {
        kind,
        rx: (detail.clientX - rect.left) / scale + display.absX(0),
        ry: (detail.clientY - rect.top) / scale + display.absY(0),
        x: detail.clientX,
        y: detail.clientY,
        scale,
        spread: Math.max(1, Math.hypot(detail.magnitudeX || 0, detail.magnitudeY || 0)),
      };
      return;
    }
    if (e.type === 'gestureend' || !gesture || gesture.kind !== kind) {
      if (e.type === 'gestureend') {
        gesture = null;
        remember(display, canvas);
      }
      return;
    }
    if (kind === 'pinch') {
      // noVNC gives a pinch the place where it began and the fingers' distance (x and y).
      const box = canvas.parentElement.getBoundingClientRect();
      const range = zoomRange({ width: display.width, height: display.height }, box);
      const scale = clamp((gesture.scale * Math.hypot(detail.magnitudeX, detail.magnitudeY)) / gesture.spread, range);
      if (Math.abs(scale - display.scale) > 1e-3) zoomTo(display, canvas, scale);
      placeAt(display, canvas, gesture.rx, gesture.ry, gesture.x, gesture.y);
    } else if (kind === 'twodrag') {
      // A two-finger drag: where it began, and how far the fingers moved on average.
      placeAt(display, canvas, gesture.rx, gesture.ry, gesture.x + detail.magnitudeX, gesture.y + detail.magnitudeY);
    } else {
      // One finger: where it is now (the picture follows it at any zoom).
      placeAt(display, canvas, gesture.rx, gesture.ry, detail.clientX, detail.clientY);
    }
  }

  for (const type of ['gesturestart', 'gesturemove', 'gestureend']) container.addEventListener(type, onGesture, true);

  // noVNC puts the picture back to 1:1 (in an animation frame) whenever the room for it changes:
  // the toolbar folds or unfolds, a banner comes or goes, the phone turns. The zoom stays: the
  // remote point at the picture's centre before the change is at its centre after it, at the
  // same zoom (within the new range). Any other way back to 1:1 (Pan off and on, a view setting)
  // is the user's: the zoom is given up.
  /** The zoom the user chose (null: 1:1), what it came to, and the remote point held through a resize. */
  let kept = null;
  /** Animation frames left in which a reset by noVNC after a resize is put right. */
  let settle = 0;

  /** The canvas of the zoomed picture, while its connection is the current one. */
  function zoomedCanvas() {
    return kept && kept.rfb === options.rfb() && kept.canvas.isConnected ? kept.canvas : null;
  }

  function restore() {
    const display = displayOf(options.rfb());
    const canvas = zoomedCanvas();
    if (!kept || !display || !canvas || !options.active()) {
      settle = 0;
      return;
    }
    const box = canvas.parentElement.getBoundingClientRect();
    const scale = clamp(kept.scale, zoomRange({ width: display.width, height: display.height }, box));
    if (Math.abs(display.scale - scale) > 1e-3) {
      zoomTo(display, canvas, scale);
      const rect = canvas.getBoundingClientRect();
      placeAt(display, canvas, kept.rx, kept.ry, rect.left + rect.width / 2, rect.top + rect.height / 2);
    }
    kept.applied = display.scale;
    settle -= 1;
    if (settle > 0) requestAnimationFrame(restore);
  }

  new ResizeObserver(() => {
    if (!kept) return;
    const display = displayOf(options.rfb());
    const canvas = zoomedCanvas();
    // Not the zoom this page set (and no resize under way): something else reset it.
    if (!display || !canvas || !options.active() || (settle === 0 && Math.abs(display.scale - kept.applied) > 1e-3)) {
      kept = null;
      return;
    }
    if (settle === 0) {
      // noVNC has not reset yet (its frame comes after this): the centre is still the user's.
      const rect = canvas.getBoundingClientRect();
      kept.rx = rect.width / 2 / display.scale + display.absX(0);
      kept.ry = rect.height / 2 / display.scale + display.absY(0);
      requestAnimationFrame(restore);
    }
    settle = 10;
  }).observe(container);

  /** After a gesture: the zoom to keep (none at 1:1). */
  function remember(display, canvas) {
    const scale = display.scale;
    kept = Math.abs(scale - 1) < 1e-3 ? null : { scale, applied: scale, rx: 0, ry: 0, canvas, rfb: options.rfb() };
  }
}
