const express = require('express');
const cors = require('cors');

const app = express();
app.use(cors({ origin: true, credentials: true }));
app.use('/public', cors({ origin: ['https://www.internal.test'] }));

app.get('/debug', (req, res) => {
  res.json({ debug: process.env.DEBUG === '1' });
});

module.exports = app;
