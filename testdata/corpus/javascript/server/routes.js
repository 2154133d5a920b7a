const express = require('express');
const { exec, execFile } = require('child_process');
const mysql = require('mysql2');

const router = express.Router();
const pool = mysql.createPool({ host: 'db', user: 'app', password: process.env.DB_PASSWORD });

router.get('/users/:id', (req, res) => {
  pool.query('SELECT * FROM users WHERE id = ' + req.params.id, (err, rows) => res.json(rows));
});

router.get('/v2/users/:id', (req, res) => {
  pool.query('SELECT * FROM users WHERE id = ?', [req.params.id], (err, rows) => res.json(rows));
});

router.get('/orders', async (req, res) => {
  const [rows] = await pool.promise().query(`SELECT * FROM orders WHERE customer = '${req.query.customer}'`);
  res.json(rows);
});

router.get('/report', async (req, res) => {
  const sql = 'SELECT region, sum(total) FROM orders WHERE year = ' + req.query.year + ' GROUP BY region';
  const [rows] = await pool.promise().query(sql);
  res.json(rows);
});

router.get('/ping', (req, res) => {
  exec(`ping -c 1 ${req.query.host}`, (err, stdout) => res.send(stdout));
});

router.get('/ping2', (req, res) => {
  execFile('ping', ['-c', '1', req.query.host], (err, stdout) => res.send(stdout));
});

router.get('/whois', (req, res) => {
  exec('whois ' + req.query.domain, (err, out) => res.send(out));
});

router.post('/calc', (req, res) => {
  res.json({ result: eval(req.body.formula) });
});

router.post('/calc2', (req, res) => {
  const { a, b } = JSON.parse(req.body.payload);
  res.json({ result: Number(a) + Number(b) });
});

router.get('/search', (req, res) => {
  res.send('<h1>Results for ' + req.query.q + '</h1>');
});

module.exports = router;
