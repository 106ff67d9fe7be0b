// Generated from streaming/protocol.py by `python manage.py protocol_js`: do not edit by hand.
// Run it again after changing protocol.py; `--check` fails while this file is stale.

/** Every message type: server actions and client frames. */
export const ActionType = Object.freeze({
  CONNECTED: "DEBATE/CONNECTED",
  TOKEN_RECEIVED: "DEBATE/TOKEN_RECEIVED",
  ARGUMENT_COMPLETE: "DEBATE/ARGUMENT_COMPLETE",
  TURN_CHANGE: "DEBATE/TURN_CHANGE",
  STATUS_UPDATE: "DEBATE/STATUS_UPDATE",
  USAGE: "DEBATE/USAGE",
  PAUSED: "DEBATE/PAUSED",
  RESUMED: "DEBATE/RESUMED",
  QUESTION: "DEBATE/QUESTION",
  CONCLUDING: "DEBATE/CONCLUDING",
  ERROR: "DEBATE/ERROR",
  PING: "DEBATE/PING",
  PONG: "DEBATE/PONG",
  RECOVERING: "DEBATE/RECOVERING",
});

/** WebSocket close codes (and DEBATE/ERROR codes), named as in protocol.Close. */
export const CloseCode = Object.freeze({
  UNAUTHORIZED: 4001,
  ORIGIN_NOT_ALLOWED: 4003,
  NOT_FOUND: 4004,
  OPERATOR_DISCONNECT: 4008,
  RATE_LIMITED: 4029,
  BAD_FRAME: 4400,
  TOO_MANY_FRAMES: 4429,
  INTERNAL: 4500,
  UNAVAILABLE: 4503,
  POLICY_VIOLATION: 1008,
  GOING_AWAY: 1001,
});

/** Debate statuses after which no event follows. */
export const FINAL_STATUSES = Object.freeze(["completed", "failed", "cancelled"]);
