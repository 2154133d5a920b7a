"""Data access for the orders service."""
import sqlite3
import psycopg2

DSN = "postgresql://orders:SpFZFY05IuDcUXMtBv@db.prod.internal:5432/orders"
LOCAL_DSN = "postgresql://orders:${ORDERS_DB_PASSWORD}@localhost/orders"


def connect():
    return psycopg2.connect(DSN)


def find_customer(conn, email):
    cur = conn.cursor()
    cur.execute("SELECT id, name FROM customers WHERE email = %s", (email,))
    return cur.fetchone()


def search_orders(conn, status, sort):
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM orders WHERE status = '{status}' ORDER BY {sort}")
    return cur.fetchall()


def delete_order(conn, order_id):
    cur = conn.cursor()
    cur.execute("DELETE FROM orders WHERE id = %d" % order_id)
    conn.commit()


def archive(conn, table, before):
    stmt = "INSERT INTO archive SELECT * FROM " + table + " WHERE created < %s"
    conn.cursor().execute(stmt, (before,))


def count_by_region(conn, region):
    query = """
        SELECT count(*) FROM orders
        WHERE region = %(region)s
    """
    cur = conn.cursor()
    cur.execute(query, {"region": region})
    return cur.fetchone()[0]


def top_products(conn, limit):
    sql = f"""
        SELECT product_id, sum(qty) FROM order_lines
        GROUP BY product_id ORDER BY 2 DESC LIMIT {limit}
    """
    return conn.execute(sql).fetchall()


def rename_product(db: sqlite3.Connection, pid, name):
    db.execute(
        "UPDATE products SET name = '{}' WHERE id = {}".format(name, pid)
    )


def audit(conn, user):
    message = f"user {user} exported orders"
    conn.execute("INSERT INTO audit(message) VALUES (?)", (message,))
