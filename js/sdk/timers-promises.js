'use strict';
// Node's `timers/promises`.
module.exports = require('./timers.js').promises;
